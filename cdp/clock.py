"""Timezone-aware UTC time: the only kind of datetime the CDP stores or returns."""

from datetime import datetime, timezone

from cdp.errors import InvalidValue


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def isoformat_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix, the form JSON consumers expect."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_timestamp(text: object) -> datetime:
    """Parse an ISO 8601 timestamp that carries its offset (`Z` or ±HH:MM) into UTC.

    Naive timestamps are refused: guessing their zone would silently shift history.
    """
    if not isinstance(text, str):
        raise InvalidValue("must be an ISO 8601 timestamp string")
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise InvalidValue(
            f"{text!r} is not an ISO 8601 timestamp like 2026-10-02T18:30:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidValue(f"{text!r} has no timezone; add Z or an offset like +02:00")
    return moment.astimezone(timezone.utc)
