"""The benchmark's synthetic data (tools/bench_cdp.py): deterministic, valid for the
importer, shaped as documented; and the verdicts that decide the benchmark's exit code."""

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cdp.db import transaction
from cdp.events.models import Event
from cdp.importer import import_file
from cdp.profiles.context import profile_context
from tools.bench_cdp import (
    SHORT_HISTORY,
    customer_id,
    phone,
    verdicts,
    write_synthetic_file,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def test_synthetic_file_is_deterministic_and_imports_cleanly(
    cdp_engine: Engine, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    counts = write_synthetic_file(first, profiles=40, events=200, history=30, now=NOW)
    write_synthetic_file(second, profiles=40, events=200, history=30, now=NOW)
    assert first.read_bytes() == second.read_bytes()
    assert counts == {"profiles": 42, "events": 200 + SHORT_HISTORY + 30}

    with transaction(cdp_engine) as session:
        summary = import_file(session, first, bulk=True, skip_invalid=True)
    assert summary.skipped == []
    assert summary.by_kind["profile"].created == 42
    assert summary.by_kind["event"].created == counts["events"]
    with Session(cdp_engine) as session:
        long_history = session.scalar(
            select(func.count()).where(Event.customer_id == customer_id(41))
        )
        assert long_history == 30
        context = profile_context(session, f"phone:{phone(7)}")
        assert context is not None and context.customer_id == customer_id(7)
        assert context.custom["membership_tier"].value in ("basic", "plus", "premium")


def result(context_p95: float, import_rate: float, ratio: float) -> dict[str, object]:
    return {
        "context": {"p95_ms": context_p95},
        "single_event": {"p95_ms": 4.0},
        "batches": {"events_per_s": 9_000.0},
        "import": {"records_per_s": import_rate},
        "history": {"ratio_p50": ratio},
    }


def test_verdicts_hold_only_within_every_target() -> None:
    good = verdicts({"sqlite": result(2.0, 25_000.0, 1.1)})
    assert all(held for _, _, held in good) and len(good) == 5
    bad = verdicts({"postgresql": result(6.0, 19_000.0, 1.6)})
    missed = [name for name, _, held in bad if not held]
    assert missed == [
        "postgresql: profile context p95 ≤ 5 ms",
        "postgresql: bulk import ≥ 20,000 records/s",
        "postgresql: history ratio (p50) ≤ 1.5",
    ]
