"""`make validate`: `rasa data validate`, failing on errors and on every unexpected warning.

Rasa counts a response as unused when only a custom action sends it; such a warning is accepted
for exactly the responses that the code in `actions/` sends, and the `utter_ask_<slot>` questions
of the forms' required slots, so that a response nobody sends, or a misspelt one, still fails.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tools.paths import RASA_BIN, REPO
from tools.training import rasa_env

UNUSED_RESPONSE = re.compile(r"UserWarning: The utterance '(\w+)' is not used in any story or rule")
WARNING = re.compile(r"UserWarning: (.*)")
RESPONSE_IN_CODE = re.compile(r"""response\s*=\s*["'](utter_\w+)["']""")


def responses_sent_by_actions(actions_dir: Path = REPO / "actions") -> set[str]:
    return {
        name
        for path in actions_dir.rglob("*.py")
        for name in RESPONSE_IN_CODE.findall(path.read_text())
    }


def responses_asked_by_forms(domain_file: Path = REPO / "domain.yml") -> set[str]:
    """`utter_ask_<slot>` and `utter_ask_<form>_<slot>` of every form's required slots: Rasa's
    FormAction sends them, yet `rasa data validate` counts them as unused."""
    forms = (yaml.safe_load(domain_file.read_text()) or {}).get("forms") or {}
    return {
        name
        for form, spec in forms.items()
        for slot in (spec or {}).get("required_slots") or []
        for name in (f"utter_ask_{slot}", f"utter_ask_{form}_{slot}")
    }


def unexpected_warnings(output: str, sent_by_actions: set[str]) -> list[str]:
    problems = []
    for line in output.splitlines():
        if unused := UNUSED_RESPONSE.search(line):
            if unused.group(1) not in sent_by_actions:
                problems.append(line.strip())
        elif warning := WARNING.search(line):
            problems.append(warning.group(1).strip())
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-history", default="5")
    args = parser.parse_args()
    result = subprocess.run(
        [str(RASA_BIN), "data", "validate", "--max-history", args.max_history],
        cwd=REPO,
        env=rasa_env(),
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    problems = unexpected_warnings(output, responses_sent_by_actions() | responses_asked_by_forms())
    if result.returncode != 0 or problems:
        print(output if result.returncode != 0 else "\n".join(problems), file=sys.stderr)
        print("data validation failed", file=sys.stderr)
        return 1
    print("data valid: domain, NLU, stories and rules are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
