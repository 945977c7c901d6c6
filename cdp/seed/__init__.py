"""The demo customers `python -m cdp seed` imports, with their dates moved to today.

The demo file is written as of one day (`WRITTEN_FOR`): a payment that failed five days
earlier, a password reset the day before, orders over the past months. Seeding moves every
date by the same whole number of days, so the demo tells the same story on any day instead
of ageing out of the opener's "recent event" windows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

SEED_FILE = Path(__file__).resolve().parent / "demo_customers.jsonl"
WRITTEN_FOR = date(2026, 11, 25)
# Top-level fields of the import format that hold a timestamp (orders and events).
DATED_FIELDS = ("placed_at", "at")


def _moved(timestamp: str, days: int) -> str:
    """The same ISO 8601 timestamp `days` later, in the same offset and notation."""
    zulu = timestamp.endswith("Z")
    moved = datetime.fromisoformat(timestamp.removesuffix("Z") + ("+00:00" if zulu else ""))
    text = (moved + timedelta(days=days)).isoformat()
    return text.removesuffix("+00:00") + "Z" if zulu else text


def dated_lines(lines: Iterable[bytes], today: date) -> Iterator[bytes]:
    """The demo file's lines with every order and event date moved to `today`'s story.

    Lines that are not JSON objects with parseable dates pass through untouched, so the
    importer still reports them by line number.
    """
    days = (today - WRITTEN_FOR).days
    for line in lines:
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or days == 0:
                raise ValueError
            for field in DATED_FIELDS:
                if isinstance(record.get(field), str):
                    record[field] = _moved(record[field], days)
        except ValueError:
            yield line
            continue
        yield json.dumps(record, ensure_ascii=False).encode() + b"\n"
