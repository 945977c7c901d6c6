"""`python -m cdp seed` tells the demo's story as of the day it runs."""

from __future__ import annotations

import json
from datetime import date

from cdp.seed import SEED_FILE, WRITTEN_FOR, dated_lines


def records(lines: list[bytes]) -> list[dict]:
    return [json.loads(line) for line in lines]


def test_dates_move_by_whole_days_keeping_time_of_day_and_offset() -> None:
    lines = [
        b'{"kind": "event", "at": "2026-11-20T09:00:00Z", "type": "payment_failed"}\n',
        b'{"kind": "order", "placed_at": "2026-06-08T07:30:00+02:00", "order_id": "O-1"}\n',
    ]
    moved = records(list(dated_lines(lines, date(2027, 3, 1))))
    days = (date(2027, 3, 1) - WRITTEN_FOR).days
    assert days == 96
    assert moved[0]["at"] == "2027-02-24T09:00:00Z"
    assert moved[1]["placed_at"] == "2026-09-12T07:30:00+02:00"
    assert moved[0]["type"] == "payment_failed" and moved[1]["order_id"] == "O-1"


def test_the_day_the_file_was_written_for_changes_nothing() -> None:
    original = SEED_FILE.read_bytes().splitlines(keepends=True)
    assert list(dated_lines(original, WRITTEN_FOR)) == original


def test_every_demo_record_keeps_its_distance_from_today() -> None:
    original = SEED_FILE.read_bytes().splitlines(keepends=True)
    later = records(list(dated_lines(original, date(2028, 1, 15))))
    for before, after in zip(records(original), later, strict=True):
        for field in ("placed_at", "at"):
            if field in before:
                assert after[field] != before[field]
        assert {k: v for k, v in after.items() if k not in ("placed_at", "at")} == {
            k: v for k, v in before.items() if k not in ("placed_at", "at")
        }


def test_lines_that_are_not_records_pass_through_for_the_importer_to_report() -> None:
    lines = [b"not json\n", b'{"kind": "order", "placed_at": "yesterday"}\n', b"[1, 2]\n"]
    assert list(dated_lines(lines, date(2027, 1, 1))) == lines
