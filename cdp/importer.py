"""JSON Lines import of profiles, orders, events, identities, consents and products.

One record per line, each with a `kind`. The whole file is one unit: the first bad line
raises ImportRecordError (line, field path, reason) and the caller's transaction rolls
back, so nothing is written. Every write is an upsert that skips unchanged values, so
importing the same file again changes nothing. A line may only refer to customers already
stored or defined by an earlier line.

Numbers are parsed as Decimal, so prices are exact; free-form objects (custom, options,
properties) get ordinary JSON numbers back. Declared custom attributes are checked against
their definitions (cdp.attributes), and the definitions against the stored data first.
"""

import json
import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from cdp.addresses import Address, make_address
from cdp.attributes.definitions import STANDARD_ATTRIBUTES, load_custom_definitions
from cdp.attributes.errors import AttributeTypeChanged, UnknownAttribute, UnverifiedOverwrite
from cdp.attributes.service import check_definitions_against_data
from cdp.catalogue.models import ProductIn
from cdp.catalogue.service import upsert_product
from cdp.changes import Change
from cdp.clock import parse_timestamp
from cdp.consents.models import ConsentIn
from cdp.consents.service import (
    clean_evidence,
    clean_source,
    parse_channel,
    parse_purpose,
    parse_status,
    record_consent,
)
from cdp.errors import (
    ErasedIdentity,
    IdentityConflict,
    ImportRecordError,
    InvalidValue,
    OrderConflict,
    ProfileNotFound,
)
from cdp.events.models import CHANNEL_MAX_LENGTH as EVENT_CHANNEL_MAX_LENGTH
from cdp.events.models import EVENT_ID_MAX_LENGTH, EVENT_TYPE_MAX_LENGTH, EventIn
from cdp.events.service import record_event
from cdp.identities.models import IdentitySource, IdentityType
from cdp.identities.service import link_identity, normalise, parse_identity_type
from cdp.orders.models import (
    CHANNEL_MAX_LENGTH,
    ORDER_ID_MAX_LENGTH,
    PRODUCT_NAME_MAX_LENGTH,
    SKU_MAX_LENGTH,
    OrderIn,
    OrderLineIn,
    OrderStatus,
)
from cdp.orders.service import record_order
from cdp.profiles.models import ProfileAttributes
from cdp.profiles.service import (
    normalise_customer_id,
    normalise_language,
    normalise_name,
    normalise_timezone,
    upsert_profile,
)
from cdp.validation import (
    clean_amount,
    clean_code,
    clean_currency,
    clean_positive_int,
    clean_text,
    describe_type,
)

KINDS = ("profile", "order", "event", "identity", "consent", "product")
WHOLE_LINE = "$"

_PROFILE_FIELDS = frozenset(
    {
        "kind",
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "email_verified",
        "phone",
        "phone_verified",
        "language",
        "address",
        "custom",
        "timezone",
        "verified",
    }
)
_ORDER_FIELDS = frozenset(
    {
        "kind",
        "customer_id",
        "order_id",
        "placed_at",
        "status",
        "channel",
        "currency",
        "items",
        "delivery_address",
    }
)
_ITEM_FIELDS = frozenset({"sku", "name", "qty", "unit_price", "options"})
_ADDRESS_FIELDS = frozenset({"line1", "line2", "city", "region", "postal_code", "country"})
_ADDRESS_REQUIRED = ("line1", "city", "postal_code", "country")
_EVENT_FIELDS = frozenset(
    {"kind", "customer_id", "type", "at", "event_id", "channel", "properties"}
)
_IDENTITY_FIELDS = frozenset({"kind", "customer_id", "type", "value", "verified"})
_PRODUCT_FIELDS = frozenset({"kind", "sku", "name", "price", "currency", "available"})
_CONSENT_FIELDS = frozenset(
    {"kind", "customer_id", "purpose", "channel", "status", "at", "source", "evidence"}
)

T = TypeVar("T")


@dataclass
class KindCounts:
    """What happened to the records of one kind."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, change: Change) -> None:
        self.read += 1
        if change is Change.CREATED:
            self.created += 1
        elif change is Change.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1


@dataclass
class ImportSummary:
    """Counts per kind, in the order of KINDS."""

    by_kind: dict[str, KindCounts] = field(
        default_factory=lambda: {kind: KindCounts() for kind in KINDS}
    )

    @property
    def records(self) -> int:
        """Records read, blank lines not counted."""
        return sum(counts.read for counts in self.by_kind.values())


def import_file(session: Session, path: Path) -> ImportSummary:
    """Import a .jsonl file into the session's transaction (see module docstring)."""
    with path.open("rb") as lines:
        return import_lines(session, lines)


def import_lines(session: Session, lines: Iterable[bytes | str]) -> ImportSummary:
    """Import records from lines numbered from 1; blank lines are skipped."""
    summary = ImportSummary()
    check_definitions_against_data(session, load_custom_definitions())
    for line_no, raw in enumerate(lines, start=1):
        text = _decode(line_no, raw)
        if not text.strip():
            continue
        record = _Fields(line_no, "", _parse_object(line_no, text))
        kind = record.required("kind", _kind)
        summary.by_kind[kind].add(_IMPORTERS[kind](session, record))
    return summary


def import_record(session: Session, data: dict[str, Any]) -> tuple[str, Change]:
    """Import one record already parsed from JSON (numbers as Decimal), e.g. an HTTP API
    body; errors are ImportRecordError with line 1. Returns the kind and what changed."""
    record = _Fields(1, "", data)
    kind = record.required("kind", _kind)
    return kind, _IMPORTERS[kind](session, record)


class _Fields:
    """A JSON object read key by key; every error carries the line and the dotted path."""

    def __init__(self, line_no: int, path: str, data: dict[str, Any]) -> None:
        self.line_no = line_no
        self.path = path
        self.data = data

    def path_of(self, key: str | None) -> str:
        if not key:
            return self.path or WHOLE_LINE
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, reason: str) -> ImportRecordError:
        return ImportRecordError(self.line_no, self.path_of(key), reason)

    def reject_unknown(self, allowed: Collection[str]) -> None:
        for key in self.data:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                raise self.error(key, f"unknown field; expected one of {expected}")

    def required(self, key: str, clean: Callable[[object], T]) -> T:
        if self.data.get(key) is None:
            raise self.error(key, "is required")
        return self._clean(key, clean)

    def optional(self, key: str, clean: Callable[[object], T]) -> T | None:
        """The cleaned value; None when the key is absent or null."""
        if self.data.get(key) is None:
            return None
        return self._clean(key, clean)

    def _clean(self, key: str, clean: Callable[[object], T]) -> T:
        try:
            return clean(self.data[key])
        except InvalidValue as error:
            raise self.error(f"{key}.{error.field}" if error.field else key, error.reason) from None

    def optional_object(self, key: str) -> "_Fields | None":
        data = self.optional(key, _object)
        return None if data is None else _Fields(self.line_no, self.path_of(key), data)

    def required_items(self, key: str) -> list["_Fields"]:
        """A non-empty array of objects, numbered from 1 in paths: items[1] is the first."""
        values = self.required(key, _non_empty_array)
        items = []
        for number, value in enumerate(values, start=1):
            path = f"{self.path_of(key)}[{number}]"
            if not isinstance(value, dict):
                raise ImportRecordError(
                    self.line_no, path, f"must be an object, got {describe_type(value)}"
                )
            items.append(_Fields(self.line_no, path, value))
        return items


def _decode(line_no: int, raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportRecordError(line_no, WHOLE_LINE, "not valid UTF-8") from None
    return raw.removeprefix("\ufeff") if line_no == 1 else raw


def _parse_object(line_no: int, text: str) -> dict[str, Any]:
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as error:
        raise ImportRecordError(
            line_no, WHOLE_LINE, f"not valid JSON: {error.msg} at column {error.colno}"
        ) from None
    except ValueError as error:
        raise ImportRecordError(line_no, WHOLE_LINE, f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ImportRecordError(
            line_no, WHOLE_LINE, f"must be a JSON object, got {describe_type(data)}"
        )
    return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {key!r}")
        data[key] = value
    return data


def _kind(value: object) -> str:
    kind = clean_text(value, max_length=max(len(kind) for kind in KINDS))
    if kind not in KINDS:
        raise InvalidValue(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidValue(f"must be an object, got {describe_type(value)}")
    return value


def _non_empty_array(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidValue(f"must be an array, got {describe_type(value)}")
    if not value:
        raise InvalidValue("must not be empty")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"must be true or false, got {describe_type(value)}")
    return value


def _free_form_object(value: object) -> dict[str, Any]:
    """A JSON object stored as is, with numbers as ordinary JSON numbers again."""
    return {key: _plain_json(item) for key, item in _object(value).items()}


def _plain_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidValue(f"number {value} is out of range")
        return number
    if isinstance(value, dict):
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_json(item) for item in value]
    return value


def _identity_type(value: object) -> IdentityType:
    return parse_identity_type(clean_text(value, max_length=32))


def _order_status(value: object) -> OrderStatus:
    status = clean_text(value, max_length=32)
    try:
        return OrderStatus(status)
    except ValueError:
        known = ", ".join(member.value for member in OrderStatus)
        raise InvalidValue(f"unknown status {status!r}; expected one of {known}") from None


def _address(fields: _Fields) -> Address:
    fields.reject_unknown(_ADDRESS_FIELDS)
    for key in _ADDRESS_REQUIRED:
        if fields.data.get(key) is None:
            raise fields.error(key, "is required")
    try:
        return make_address(
            line1=fields.data["line1"],
            line2=fields.data.get("line2"),
            city=fields.data["city"],
            region=fields.data.get("region"),
            postal_code=fields.data["postal_code"],
            country=fields.data["country"],
        )
    except InvalidValue as error:
        raise fields.error(error.field, error.reason) from None


def _optional_address(record: _Fields, key: str) -> Address | None:
    fields = record.optional_object(key)
    return None if fields is None else _address(fields)


def _unknown_customer(record: _Fields, customer_id: str) -> ImportRecordError:
    return record.error(
        "customer_id",
        f"unknown customer {customer_id}: not in the database and not defined by an earlier line",
    )


def _import_profile(session: Session, record: _Fields) -> Change:
    record.reject_unknown(_PROFILE_FIELDS)
    customer_id = record.required("customer_id", normalise_customer_id)
    attributes = ProfileAttributes(
        first_name=record.optional("first_name", normalise_name),
        last_name=record.optional("last_name", normalise_name),
        email=record.optional("email", partial(normalise, IdentityType.EMAIL)),
        phone=record.optional("phone", partial(normalise, IdentityType.PHONE)),
        language=record.optional("language", normalise_language),
        timezone=record.optional("timezone", normalise_timezone),
        address=_optional_address(record, "address"),
        custom=record.optional("custom", _free_form_object),
        email_verified=record.optional("email_verified", _boolean) or False,
        phone_verified=record.optional("phone_verified", _boolean) or False,
        verified=record.optional("verified", _boolean) or False,
    )
    try:
        return upsert_profile(session, customer_id, attributes, IdentitySource.IMPORT)
    except IdentityConflict as conflict:
        raise record.error(conflict.identity_type, str(conflict)) from None
    except ErasedIdentity as erased:
        raise record.error(erased.identity_type, str(erased)) from None
    except InvalidValue as error:
        path = f"custom.{error.field}" if error.field else "custom"
        raise record.error(path, error.reason) from None
    except (UnknownAttribute, AttributeTypeChanged) as error:
        raise record.error(f"custom.{error.name}", str(error)) from None
    except UnverifiedOverwrite as error:
        path = error.name if error.name in STANDARD_ATTRIBUTES else f"custom.{error.name}"
        raise record.error(path, str(error)) from None


def _import_product(session: Session, record: _Fields) -> Change:
    record.reject_unknown(_PRODUCT_FIELDS)
    available = record.optional("available", _boolean)
    incoming = ProductIn(
        sku=record.required("sku", partial(clean_text, max_length=SKU_MAX_LENGTH)),
        name=record.required("name", partial(clean_text, max_length=PRODUCT_NAME_MAX_LENGTH)),
        price=record.required("price", clean_amount),
        currency=record.required("currency", clean_currency),
        available=True if available is None else available,
    )
    return upsert_product(session, incoming)


def _import_order(session: Session, record: _Fields) -> Change:
    record.reject_unknown(_ORDER_FIELDS)
    customer_id = record.required("customer_id", normalise_customer_id)
    order_id = record.required("order_id", partial(clean_code, max_length=ORDER_ID_MAX_LENGTH))
    placed_at = record.required("placed_at", parse_timestamp)
    status = record.required("status", _order_status)
    channel = record.required("channel", partial(clean_text, max_length=CHANNEL_MAX_LENGTH))
    currency = record.required("currency", clean_currency)
    lines = tuple(_order_line(item) for item in record.required_items("items"))
    try:
        clean_amount(sum((line.quantity * line.unit_price for line in lines), Decimal(0)))
    except InvalidValue as error:
        raise record.error("items", f"order total {error.reason}") from None
    incoming = OrderIn(
        order_id=order_id,
        customer_id=customer_id,
        placed_at=placed_at,
        status=status,
        channel=channel,
        currency=currency,
        lines=lines,
        delivery_address=_optional_address(record, "delivery_address"),
    )
    try:
        return record_order(session, incoming)
    except ProfileNotFound:
        raise _unknown_customer(record, customer_id) from None
    except OrderConflict as conflict:
        raise record.error("order_id", str(conflict)) from None


def _order_line(item: _Fields) -> OrderLineIn:
    item.reject_unknown(_ITEM_FIELDS)
    return OrderLineIn(
        sku=item.required("sku", partial(clean_text, max_length=SKU_MAX_LENGTH)),
        name=item.required("name", partial(clean_text, max_length=PRODUCT_NAME_MAX_LENGTH)),
        quantity=item.required("qty", clean_positive_int),
        unit_price=item.required("unit_price", clean_amount),
        options=item.optional("options", _free_form_object) or {},
    )


def _import_event(session: Session, record: _Fields) -> Change:
    record.reject_unknown(_EVENT_FIELDS)
    customer_id = record.required("customer_id", normalise_customer_id)
    incoming = EventIn(
        event_id=record.required("event_id", partial(clean_text, max_length=EVENT_ID_MAX_LENGTH)),
        customer_id=customer_id,
        type=record.required("type", partial(clean_text, max_length=EVENT_TYPE_MAX_LENGTH)),
        occurred_at=record.required("at", parse_timestamp),
        channel=record.optional(
            "channel", partial(clean_text, max_length=EVENT_CHANNEL_MAX_LENGTH)
        ),
        properties=record.optional("properties", _free_form_object) or {},
    )
    try:
        recorded = record_event(session, incoming)
    except ProfileNotFound:
        raise _unknown_customer(record, customer_id) from None
    return Change.CREATED if recorded else Change.UNCHANGED


def _import_identity(session: Session, record: _Fields) -> Change:
    record.reject_unknown(_IDENTITY_FIELDS)
    customer_id = record.required("customer_id", normalise_customer_id)
    identity_type = record.required("type", _identity_type)
    value = record.required("value", partial(normalise, identity_type))
    verified = record.optional("verified", _boolean) or False
    try:
        return link_identity(
            session, customer_id, identity_type, value, verified, IdentitySource.IMPORT
        )
    except ProfileNotFound:
        raise _unknown_customer(record, customer_id) from None
    except (IdentityConflict, ErasedIdentity) as conflict:
        raise record.error("value", str(conflict)) from None


def _import_consent(session: Session, record: _Fields) -> Change:
    record.reject_unknown(_CONSENT_FIELDS)
    customer_id = record.required("customer_id", normalise_customer_id)
    incoming = ConsentIn(
        customer_id=customer_id,
        purpose=record.required("purpose", parse_purpose),
        channel=record.required("channel", parse_channel),
        status=record.required("status", parse_status),
        recorded_at=record.required("at", parse_timestamp),
        source=record.required("source", clean_source),
        evidence=record.optional("evidence", clean_evidence),
    )
    try:
        return record_consent(session, incoming)
    except ProfileNotFound:
        raise _unknown_customer(record, customer_id) from None


_IMPORTERS: dict[str, Callable[[Session, _Fields], Change]] = {
    "profile": _import_profile,
    "order": _import_order,
    "event": _import_event,
    "identity": _import_identity,
    "consent": _import_consent,
    "product": _import_product,
}
