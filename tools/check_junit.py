"""CI's guard against a green run that skipped what matters.

`python -m tools.check_junit results/junit.xml --require postgresql` fails when any test was
skipped, or when no passing test ran with the named parameter (pytest puts parameter ids in
test names, e.g. `test_reorder[postgresql]`).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def check(report: Path, required_params: list[str]) -> list[str]:
    cases = ET.parse(report).getroot().iter("testcase")
    problems: list[str] = []
    passed_names: list[str] = []
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        skipped = case.find("skipped")
        if skipped is not None:
            problems.append(f"skipped: {name}: {skipped.get('message', '')}")
        elif case.find("failure") is None and case.find("error") is None:
            passed_names.append(name)
    for param in required_params:
        ran = [n for n in passed_names if f"[{param}" in n or f"-{param}" in n]
        if not ran:
            problems.append(f"no passing test ran with parameter {param!r}")
        else:
            print(f"{len(ran)} tests passed with {param}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--require", action="append", default=[], metavar="PARAM")
    args = parser.parse_args()
    problems = check(args.report, args.require)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
