"""The tooling's own logic: training fingerprints, data-validation filtering, CI's junit guard."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.rasa_venv import run_in_rasa_venv
from tools.check_junit import check
from tools.paths import REPO
from tools.stack import isolated_settings, rasa_command
from tools.training import fingerprint
from tools.validate_data import responses_asked_by_forms, unexpected_warnings


@pytest.fixture
def bot(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text("nlu: []\n")
    (tmp_path / "domain.yml").write_text("intents: [greet]\n")
    (tmp_path / "config.yml").write_text("language: en\n")
    return tmp_path


def test_fingerprint_follows_content_not_timestamps(bot: Path) -> None:
    before = fingerprint(bot)
    os.utime(bot / "domain.yml", (1, 1))
    assert fingerprint(bot) == before
    (bot / "data" / "rules.yml").write_text("rules: []\n")
    with_rules = fingerprint(bot)
    assert with_rules != before
    shutil.move(bot / "data" / "rules.yml", bot / "data" / "stories.yml")
    assert fingerprint(bot) not in (before, with_rules)  # a renamed file is a change too
    (bot / "config.yml").write_text("language: de\n")
    assert fingerprint(bot) != with_rules


def test_only_unused_response_warnings_for_responses_actions_send_are_accepted() -> None:
    output = "\n".join(
        [
            "UserWarning: The utterance 'utter_sent_by_action' is not used in any story or rule.",
            "UserWarning: The utterance 'utter_forgotten' is not used in any story or rule.",
            "UserWarning: Issue found in 'data/stories.yml': intent 'greet' is not in the domain.",
            "DeprecationWarning: something in a library",
        ]
    )
    assert unexpected_warnings(output, {"utter_sent_by_action"}) == [
        "UserWarning: The utterance 'utter_forgotten' is not used in any story or rule.",
        "Issue found in 'data/stories.yml': intent 'greet' is not in the domain.",
    ]


def test_form_questions_count_as_sent(tmp_path: Path) -> None:
    domain = tmp_path / "domain.yml"
    domain.write_text("forms:\n  address_form:\n    required_slots: [address_city]\n")
    assert responses_asked_by_forms(domain) == {
        "utter_ask_address_city",
        "utter_ask_address_form_address_city",
    }


def junit(tmp_path: Path, cases: str) -> Path:
    report = tmp_path / "junit.xml"
    report.write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
    return report


def test_junit_guard_needs_a_passing_postgresql_test(tmp_path: Path) -> None:
    ok = junit(tmp_path, '<testcase classname="t" name="test_a[postgresql]"/>')
    assert check(ok, ["postgresql"]) == []
    failed = junit(
        tmp_path, '<testcase classname="t" name="test_a[postgresql]"><failure/></testcase>'
    )
    assert check(failed, ["postgresql"]) == ["no passing test ran with parameter 'postgresql'"]


def test_junit_guard_refuses_any_skip(tmp_path: Path) -> None:
    report = junit(
        tmp_path,
        (
            '<testcase classname="t" name="test_a[postgresql]"/>'
            '<testcase classname="t" name="test_b[sqlite]"><skipped message="why"/></testcase>'
        ),
    )
    assert check(report, ["postgresql"]) == ["skipped: t::test_b[sqlite]: why"]


def test_rasa_reads_a_token_that_begins_with_a_dash(tmp_path: Path) -> None:
    """One random token in 64 begins with "-"; as a separate argument Rasa took it for a flag and
    exited with code 2, which failed a CI run."""
    settings = isolated_settings(tmp_path / "model.tar.gz", "sqlite://", "sqlite://", tmp_path)
    settings = replace(settings, api_token="-starts-with-a-dash")
    command = rasa_command(settings)
    read = run_in_rasa_venv(REPO / "tests" / "check_rasa_arguments.py", *command[3:])
    assert read == {
        "auth_token": "-starts-with-a-dash",
        "port": settings.rasa_port,
        "cors": ["*"],
        "model": str(tmp_path / "model.tar.gz"),
        "credentials": "credentials.yml",
        "endpoints": "endpoints.yml",
        "enable_api": True,
    }
