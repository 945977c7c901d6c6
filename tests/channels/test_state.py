"""The connectors' shared state (memory and a real Redis), background queues and the Messenger
signature check, exercised inside the Rasa venv where they run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tools.paths import RASA_PYTHON, REPO

pytestmark = pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa venv is not installed")


@pytest.fixture(scope="module")
def report() -> dict:
    result = subprocess.run(
        [str(RASA_PYTHON), str(Path(__file__).with_name("check_state.py"))],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "RASA_REDIS_HOST": "127.0.0.1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_each_delivery_id_counts_once_and_choices_are_kept(report: dict, store: str) -> None:
    seen = report[store]
    assert seen["type"] == {"memory": "MemoryState", "redis": "RedisState"}[store]
    assert seen["first"] == [True, False, False]
    assert seen["recalled"] == [["Yes", "/affirm"], ["No", "/deny"]]
    assert seen["forgotten"] == []


def test_replicas_sharing_redis_accept_a_delivery_exactly_once(report: dict) -> None:
    assert sorted(report["race"]) == [False] * 9 + [True]


def test_turns_run_in_order_per_sender_even_after_a_failure(report: dict) -> None:
    assert report["order"] == {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2, 3, 4]}


def test_the_memory_store_stays_bounded(report: dict) -> None:
    assert report["bound"] == 100


def test_only_a_sha256_signature_with_the_app_secret_passes(report: dict) -> None:
    assert report["signatures"] == {
        "good": True,
        "empty_secret": False,
        "sha1": False,
        "missing": False,
    }
