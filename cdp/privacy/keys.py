"""Keyed hashes of erased identifiers, and the check resolution makes against them.

HMAC-SHA256 with CDP_ERASURE_KEY: without the key nobody can test a guessed phone number
against the tombstones, yet the CDP can still recognise an erased identifier when it comes
back. The key is required (no built-in fallback); `make run` users export one like
CDP_IDENTITY_SECRET. Changing it makes the existing tombstones unrecognisable.
"""

import hashlib
import hmac
import os

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cdp.errors import ErasureKeyMissing
from cdp.privacy.models import ErasedIdentifier

ERASURE_KEY_ENV = "CDP_ERASURE_KEY"
MIN_KEY_LENGTH = 16


def erasure_key() -> bytes:
    """The key from CDP_ERASURE_KEY; ErasureKeyMissing when unset, blank or too short."""
    key = os.environ.get(ERASURE_KEY_ENV, "").strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ErasureKeyMissing(ERASURE_KEY_ENV)
    return key.encode("utf-8")


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """Hex HMAC-SHA256 of `kind:value` (an identifier, or `customer_id:C-1001`)."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def is_erased_identifier(session: Session, identity_type: str, normalised_value: str) -> bool:
    """True when this identifier belonged to an erased person.

    Needs the key only if something was ever erased, so a fresh install runs without it.
    """
    if not session.scalar(select(exists().select_from(ErasedIdentifier))):
        return False
    digest = keyed_hash(erasure_key(), identity_type, normalised_value)
    return bool(
        session.scalar(
            select(
                exists().where(
                    ErasedIdentifier.type == identity_type,
                    ErasedIdentifier.value_hmac == digest,
                )
            )
        )
    )
