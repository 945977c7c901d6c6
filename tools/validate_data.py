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
DUPLICATED_INTENTS = re.compile(
    r"The following duplicated intents have been found across multiple domain files: (.*)$"
)
RETRIEVAL_INTENT = re.compile(r"intent:\s*(\w+)/\w+")
RESPONSE_IN_CODE = re.compile(r"""response\s*=\s*["'](utter_\w+)["']""")


# Responses that Rasa's own default actions send: action_default_fallback and
# action_default_ask_rephrase (the two-stage fallback, docs/conversation-design.md).
RASA_DEFAULT_RESPONSES = frozenset({"utter_default", "utter_ask_rephrase"})


def affirmation_questions(domain_file: Path = REPO / "domain.yml") -> set[str]:
    """`utter_ask_<intent>` for every intent: the "did you mean" question that
    action_default_ask_affirmation (actions/fallback.py) picks by the intent's name. Rasa's
    validator names the knowledge base's `utter_ask_faq/<topic>` questions `utter_ask_faq`."""
    intents = yaml.safe_load(domain_file.read_text()).get("intents") or []
    names = (intent if isinstance(intent, str) else next(iter(intent)) for intent in intents)
    return {f"utter_ask_{name}" for name in names}


def responses_sent_by_actions(actions_dir: Path = REPO / "actions") -> set[str]:
    """The domain.yml responses sent by code rather than by a rule or story."""
    domain_file = actions_dir.parent / "domain.yml"
    responses = set(yaml.safe_load(domain_file.read_text()).get("responses") or {})
    by_name = (RASA_DEFAULT_RESPONSES | affirmation_questions(domain_file)) & responses
    return by_name | {
        name
        for path in actions_dir.rglob("*.py")
        for name in RESPONSE_IN_CODE.findall(path.read_text())
    }


def domain_action_names(domain: dict) -> set[str]:
    """Action names a loaded domain lists, plain or with options (`- name: {send_domain: true}`)."""
    return {next(iter(entry)) if isinstance(entry, dict) else entry for entry in domain["actions"]}


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


def retrieval_intents(data_dir: Path = REPO / "data") -> set[str]:
    """Intents trained as `<intent>/<key>` (the knowledge base's `faq`)."""
    return {
        name
        for path in data_dir.rglob("*.yml")
        for name in RETRIEVAL_INTENT.findall(path.read_text())
    }


def unexpected_warnings(
    output: str, sent_by_actions: set[str], retrieval: set[str] = frozenset()
) -> list[str]:
    problems = []
    for line in output.splitlines():
        if unused := UNUSED_RESPONSE.search(line):
            if unused.group(1) not in sent_by_actions:
                problems.append(line.strip())
        elif duplicated := DUPLICATED_INTENTS.search(line):
            # Rasa 3.6 needs a retrieval intent in domain.yml (the story reader checks it
            # there) and then adds it again from the NLU data, warning about the duplicate.
            if not set(duplicated.group(1).split(", ")) <= retrieval:
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
    problems = unexpected_warnings(
        output,
        responses_sent_by_actions() | responses_asked_by_forms() | affirmation_questions(),
        retrieval_intents(),
    )
    if result.returncode != 0 or problems:
        print(output if result.returncode != 0 else "\n".join(problems), file=sys.stderr)
        print("data validation failed", file=sys.stderr)
        return 1
    print("data valid: domain, NLU, stories and rules are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
