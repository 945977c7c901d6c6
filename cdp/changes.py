"""What a write did, so importers and callers can report created/updated/unchanged."""

from enum import Enum


class Change(str, Enum):
    """Outcome of an idempotent write."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
