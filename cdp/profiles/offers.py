"""Personalised offers: rules a marketer edits in YAML, checked against a profile's attributes.

The file is `cdp/definitions/offers.yml`, or the path in CDP_OFFERS, read again whenever it
changes. Conditions use the formula language of the computed attributes
(cdp.computed.expressions), so an offer can only read attribute values, never run code.
Who may get an offer at all (a verified customer, marketing consent on the channel) is
decided here too, so no caller can forget it.
"""

import os
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cdp.attributes.definitions import (
    DEFINITIONS_DIR,
    STANDARD_ATTRIBUTES,
    check_attribute_name,
    read_yaml_mapping,
)
from cdp.attributes.errors import DefinitionError
from cdp.attributes.types import typed_for_formulas
from cdp.clock import utcnow
from cdp.computed.definitions import load_computed_definitions
from cdp.computed.expressions import (
    EvalContext,
    Formula,
    FormulaError,
    evaluate,
    parse_formula,
    truthy,
)
from cdp.consents.models import ConsentChannel, ConsentPurpose
from cdp.consents.service import has_consent
from cdp.errors import InvalidValue
from cdp.events.models import EventIn
from cdp.events.service import events_of_types, record_event
from cdp.profiles.context import ProfileContext, profile_context

OFFERS_ENV = "CDP_OFFERS"
DEFAULT_OFFERS = DEFINITIONS_DIR / "offers.yml"
OFFER_ACCEPTED, OFFER_DECLINED = "offer_accepted", "offer_declined"
TEXT_FIELDS = ("text", "accepted_text")
# The only profile value an offer's wording may name.
TEXT_PLACEHOLDERS = frozenset({"first_name"})
_OFFER_KEYS = frozenset({"when", "text", "accepted_text", "cooldown_days"})


@dataclass(frozen=True)
class Offer:
    """One offer rule: when it applies, what is said, how long an answer holds."""

    offer_id: str
    when: Formula
    text: str
    accepted_text: str
    cooldown_days: int


@dataclass(frozen=True)
class MadeOffer:
    """An offer as said to one customer."""

    offer_id: str
    text: str
    accepted_text: str


def offers_path() -> Path:
    """The offers file in use: CDP_OFFERS or the shipped default."""
    configured = os.environ.get(OFFERS_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_OFFERS


def load_offers(path: Path | None = None) -> tuple[Offer, ...]:
    """The offers in file order, cached per version of the file; DefinitionError names the
    file, the offer and the key at fault."""
    target = (path or offers_path()).resolve()
    try:
        modified = target.stat().st_mtime_ns
    except OSError as error:
        raise DefinitionError(f"cannot read {target}: {error.strerror}") from None
    return _load_cached(target, modified)


@lru_cache(maxsize=4)
def _load_cached(path: Path, _modified: int) -> tuple[Offer, ...]:
    document = read_yaml_mapping(path)
    unknown = set(document) - {"version", "offers"}
    if unknown:
        raise DefinitionError(f"{path}: unknown top-level key {sorted(unknown)[0]!r}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise DefinitionError(f"{path}: version: must be a whole number")
    entries = document.get("offers") or {}
    if not isinstance(entries, dict):
        raise DefinitionError(f"{path}: offers: must be a mapping of offer id to offer")
    computed = load_computed_definitions()
    known = {
        *STANDARD_ATTRIBUTES,
        *computed.custom.attributes,
        *computed.names,
    }
    return tuple(_offer(path, str(name), spec, known) for name, spec in entries.items())


def _offer(path: Path, offer_id: str, spec: object, known: set[str]) -> Offer:
    check_attribute_name(path, offer_id)
    where = f"{path}: {offer_id}"
    if not isinstance(spec, dict):
        raise DefinitionError(f"{where}: must be a mapping with when, text and accepted_text")
    extra = set(spec) - _OFFER_KEYS
    if extra:
        raise DefinitionError(
            f"{where}: unknown key {sorted(extra)[0]!r}; expected {', '.join(sorted(_OFFER_KEYS))}"
        )
    try:
        when = parse_formula(spec.get("when"))
    except FormulaError as error:
        raise DefinitionError(f"{where}: when: {error}") from None
    missing = sorted(when.names - known)
    if missing:
        raise DefinitionError(f"{where}: when: unknown attribute {missing[0]!r}")
    texts = {key: _text(where, key, spec.get(key)) for key in TEXT_FIELDS}
    cooldown = spec.get("cooldown_days", 0)
    if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
        raise DefinitionError(f"{where}: cooldown_days: must be a whole number of days, 0 or more")
    return Offer(offer_id, when, texts["text"], texts["accepted_text"], cooldown)


def _text(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{where}: {key}: must be non-empty text")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as error:
        raise DefinitionError(f"{where}: {key}: {error}") from None
    if names - TEXT_PLACEHOLDERS:
        raise DefinitionError(
            f"{where}: {key}: unknown placeholder {{{sorted(names - TEXT_PLACEHOLDERS)[0]}}}; "
            f"only {{first_name}} is filled in"
        )
    return " ".join(value.split())


def formula_values(context: ProfileContext) -> dict[str, Any]:
    """Standard, custom and computed values of a profile as offer conditions see them."""
    custom_definitions = load_computed_definitions().custom.attributes
    values: dict[str, Any] = {name: view.value for name, view in context.standard.items()}
    for name, view in context.custom.items():
        definition = custom_definitions.get(name)
        if definition is not None:
            values[name] = typed_for_formulas(definition.type, view.value)
    for name, value in context.computed.items():
        is_count = isinstance(value, int) and not isinstance(value, bool)
        values[name] = Decimal(value) if is_count else value
    return values


def _last_answers(session: Session, customer_id: str) -> dict[str, datetime]:
    """When each offer was last answered by this customer."""
    answered: dict[str, datetime] = {}
    for event in events_of_types(session, customer_id, (OFFER_ACCEPTED, OFFER_DECLINED)):
        offer_id = (event.properties or {}).get("offer_id")
        if isinstance(offer_id, str):
            answered[offer_id] = event.occurred_at
    return answered


def offer_for(
    session: Session,
    customer_id: str,
    channel: ConsentChannel,
    *,
    now: datetime | None = None,
    offers: tuple[Offer, ...] | None = None,
) -> MadeOffer | None:
    """The first offer the customer qualifies for, or None.

    None without marketing consent in force on `channel` (or `any`), for an unknown
    customer, and for an offer answered less than its cooldown_days ago. The caller must
    have verified who the customer is.
    """
    if not has_consent(session, customer_id, ConsentPurpose.MARKETING, channel):
        return None
    moment = now or utcnow()
    context = profile_context(session, customer_id, now=moment)
    if context is None:
        return None
    values = formula_values(context)
    answered = _last_answers(session, customer_id)
    for offer in offers if offers is not None else load_offers():
        last = answered.get(offer.offer_id)
        if last is not None and moment - last < timedelta(days=offer.cooldown_days):
            continue
        if truthy(evaluate(offer.when, EvalContext(values, moment.date()))):
            first_name = values.get("first_name") or "Hello"
            return MadeOffer(
                offer_id=offer.offer_id,
                text=offer.text.format(first_name=first_name),
                accepted_text=offer.accepted_text.format(first_name=first_name),
            )
    return None


def record_offer_answer(
    session: Session,
    customer_id: str,
    offer_id: str,
    *,
    accepted: bool,
    event_id: str,
    channel: str | None,
    now: datetime | None = None,
) -> bool:
    """Store the customer's yes or no as an event; False for a redelivery (same event_id).

    InvalidValue for an offer id the offers file does not define (e.g. removed since).
    """
    if offer_id not in {offer.offer_id for offer in load_offers()}:
        raise InvalidValue(f"unknown offer {offer_id!r}", field="offer_id")
    return record_event(
        session,
        EventIn(
            event_id=event_id,
            customer_id=customer_id,
            type=OFFER_ACCEPTED if accepted else OFFER_DECLINED,
            occurred_at=now or utcnow(),
            channel=channel,
            properties={"offer_id": offer_id},
        ),
    )
