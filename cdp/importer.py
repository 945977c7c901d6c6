"""JSON Lines import of profiles, orders, events, identities, consents and products.

One record per line, each with a `kind`. The whole file is one unit: the first bad line
raises ImportRecordError (line, field path, reason) and the caller's transaction rolls
back, so nothing is written. With skip_invalid, each record is written in a savepoint
instead: a bad one is rolled back alone and reported in ImportSummary.skipped. Every write
is an upsert that skips unchanged values, so importing the same file again changes nothing.
A line may only refer to customers already stored or defined by an earlier line.

With bulk, new profiles and events are validated the same way but written in chunks by
cdp.bulk (a few statements per thousand records); every other record, and a profile that
already exists, still takes the one-record path, in file order.

Numbers are parsed as Decimal, so prices are exact; free-form objects (custom, options,
properties) get ordinary JSON numbers back. Declared custom attributes are checked against
their definitions (cdp.attributes), and the definitions against the stored data first.
"""

import gc
import json
import math
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from threading import Event, Thread
from typing import Any, ClassVar, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cdp.addresses import Address, make_address
from cdp.attributes.definitions import (
    STANDARD_ATTRIBUTES,
    CustomDefinitions,
    load_custom_definitions,
)
from cdp.attributes.errors import AttributeTypeChanged, UnknownAttribute, UnverifiedOverwrite
from cdp.attributes.service import check_definitions_against_data, register_type
from cdp.bulk import (
    NewProfile,
    NewProfileAggregates,
    apply_events_in_bulk,
    bulk_cache,
    insert_events,
    insert_new_profiles,
    new_profile_rows,
    refresh_statistics,
    stored_customers,
    taken_identifiers,
)
from cdp.catalogue.models import ProductIn
from cdp.catalogue.service import upsert_product
from cdp.changes import Change
from cdp.clock import parse_timestamp, utcnow
from cdp.computed.definitions import load_computed_definitions
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
    CdpError,
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
from cdp.privacy.models import ErasedIdentifier
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
_KIND_NAMES = frozenset(KINDS)
WHOLE_LINE = "$"
# Profile and event lines buffered before the bulk path writes them.
BULK_CHUNK = 20_000
# Table statistics are refreshed after this many bulk lines, then each time it doubles.
ANALYZE_FIRST_AT = 20_000
# New profiles whose event aggregates a bulk import folds in memory (about 1 KB each with
# two event aggregates); past it they are written out and their later events update them
# in the database (much slower), so these aggregates do not grow without bound.
FRESH_AGGREGATES_LIMIT = 2_000_000

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
    """Counts per kind, in the order of KINDS, and the lines skipped (skip_invalid)."""

    by_kind: dict[str, KindCounts] = field(
        default_factory=lambda: {kind: KindCounts() for kind in KINDS}
    )
    skipped: list[ImportRecordError] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Records imported (created, updated or unchanged), blank lines not counted."""
        return sum(counts.read for counts in self.by_kind.values())

    @property
    def read(self) -> int:
        """Non-blank lines read: imported plus skipped."""
        return self.records + len(self.skipped)

    @property
    def written(self) -> int:
        """Records that created or changed something."""
        return sum(counts.created + counts.updated for counts in self.by_kind.values())


def import_file(
    session: Session, path: Path, *, skip_invalid: bool = False, bulk: bool = False
) -> ImportSummary:
    """Import a .jsonl file into the session's transaction (see module docstring)."""
    with path.open("rb") as lines:
        return import_lines(session, lines, skip_invalid=skip_invalid, bulk=bulk)


def import_lines(
    session: Session,
    lines: Iterable[bytes | str],
    *,
    skip_invalid: bool = False,
    bulk: bool = False,
) -> ImportSummary:
    """Import records from lines numbered from 1; blank lines are skipped."""
    summary = ImportSummary()
    check_definitions_against_data(session, load_custom_definitions())
    if bulk:
        _import_in_bulk(session, lines, summary, skip_invalid)
    else:
        for line_no, raw in enumerate(lines, start=1):
            try:
                line = _record(line_no, raw)
                if line is None:
                    continue
                _, record = line
                kind = record.required("kind", _kind)
                summary.by_kind[kind].add(_write_one(session, kind, record, skip_invalid))
            except ImportRecordError as error:
                if not skip_invalid:
                    raise
                summary.skipped.append(error)
    summary.skipped.sort(key=lambda error: error.line_no)
    return summary


def _import_in_bulk(
    session: Session, lines: Iterable[bytes | str], summary: ImportSummary, skip_invalid: bool
) -> None:
    """Profile and event lines through _BulkBatch, the others one by one in file order."""
    batch = _BulkBatch(session, summary, skip_invalid)
    with bulk_cache(session), _rare_collections() as batch.settle_objects, _settled(batch):
        for line in _parsed_lines(lines, batch.custom):
            try:
                if isinstance(line, ImportRecordError):
                    raise line
                if batch.add(line):
                    continue
                batch.flush()
                record = line.record()
                summary.by_kind[line.kind].add(_write_one(session, line.kind, record, skip_invalid))
            except ImportRecordError as error:
                if not skip_invalid:
                    batch.flush()  # an error on an earlier, buffered line comes first
                    raise
                summary.skipped.append(error)
        batch.finish()


@contextmanager
def _settled(batch: "_BulkBatch") -> Iterator[None]:
    """On the way out, even on an error, wait for a chunk still being written: only then
    is the session the caller's again (the chunk's own error is then not raised)."""
    try:
        yield
    finally:
        if batch.in_flight is not None:
            batch.in_flight.thread.join()


# Objects allocated between two youngest-generation collections during a bulk import.
BULK_GC_THRESHOLD = 100_000


@contextmanager
def _rare_collections() -> Iterator[Callable[[], None]]:
    """Run the cyclic garbage collector less often and over less, then as before; yields
    the function to call when the objects alive now are long-lived (a chunk boundary).

    A bulk import allocates millions of short-lived objects without cycles (parsed lines,
    rows) and keeps a growing set of long-lived ones (aggregates folded in memory, the
    customers seen). With the default threshold (700) the collector's passes cost over a
    tenth of the import; and each full pass walks every long-lived object again, a cost
    that grows with the import (over a minute at a million profiles). Frozen objects
    (gc.freeze) are left out of every pass until the import ends; what is garbage at a
    chunk boundary is collected first, since a frozen cycle is never freed (SQLAlchemy's
    bound parameters, holding a chunk's ids, leave some; memory grew with every chunk). Nothing is
    frozen if the process had frozen objects before (then they are not ours to unfreeze).
    """
    thresholds = gc.get_threshold()
    settle = _collect_and_freeze if gc.get_freeze_count() == 0 else _do_nothing
    gc.set_threshold(BULK_GC_THRESHOLD, *thresholds[1:])
    try:
        yield settle
    finally:
        if settle is _collect_and_freeze:
            gc.unfreeze()
        gc.set_threshold(*thresholds)


def _collect_and_freeze() -> None:
    gc.collect()  # over what is not frozen yet: about one chunk's objects
    gc.freeze()


def _do_nothing() -> None:
    """The settling when nothing may be frozen."""


def _write_one(session: Session, kind: str, record: "_Fields", savepoint: bool) -> Change:
    """One record through its service function; in a savepoint when a failure must not
    undo the records before it."""
    if not savepoint:
        return _IMPORTERS[kind](session, record)
    with session.begin_nested():
        return _IMPORTERS[kind](session, record)


def _record(line_no: int, raw: bytes | str) -> "tuple[str, _Fields] | None":
    """The line's text and JSON object; None for a blank line."""
    text = _decode(line_no, raw)
    if not text or text.isspace():
        return None
    return text, _Fields(line_no, "", _parse_object(line_no, text))


def _parsed_lines(
    lines: Iterable[bytes | str], custom: CustomDefinitions
) -> Iterator["_ParsedLine | ImportRecordError"]:
    """The non-blank lines parsed and validated (no database access), in order, each line's
    error in its place."""
    for line_no, raw in enumerate(lines, start=1):
        try:
            line = _record(line_no, raw)
            if line is None:
                continue
            text, record = line
            kind = record.required("kind", _kind)
            if kind == "event":
                yield _EventLine(line_no, _event_in(record))
            elif kind == "profile":
                yield _profile_line(record, text, custom)
            else:
                yield _OtherLine(line_no, kind, record.data)
        except ImportRecordError as error:
            yield error


def _profile_line(record: "_Fields", text: str, custom: CustomDefinitions) -> "_ProfileLine":
    """The rows are built for every profile line, even one whose customer turns out to be
    stored already: only the writing side knows, and in a bulk file nearly all are new."""
    customer_id, attributes = _profile_in(record)
    new_profile = None
    # On a validation error upsert_profile names the field (and any earlier one).
    with suppress(CdpError):
        new_profile = new_profile_rows(
            customer_id, attributes, custom, IdentitySource.IMPORT, utcnow()
        )
    return _ProfileLine(record.line_no, text, customer_id, new_profile)


@dataclass(slots=True)
class _ProfileLine:
    """A valid profile line, with the rows it would insert if the customer is new."""

    line_no: int
    text: str
    customer_id: str
    new_profile: NewProfile | None  # None: a custom value is invalid (upsert_profile says)
    kind: ClassVar[str] = "profile"

    def record(self) -> "_Fields":
        """The line read again, for the one-record path (which needs the database)."""
        return _Fields(self.line_no, "", _parse_object(self.line_no, self.text))

    def contacts(self) -> list[tuple[IdentityType, str]]:
        """The email and phone the line would link (normalised)."""
        if self.new_profile is not None:
            return [(kind, value) for kind, value, _ in self.new_profile.identities]
        return _contact_identifiers(self.record())


@dataclass(slots=True)
class _EventLine:
    """A valid event line."""

    line_no: int
    event: EventIn
    kind: ClassVar[str] = "event"


@dataclass(slots=True)
class _OtherLine:
    """A line of another kind, parsed; validated by its one-record importer."""

    line_no: int
    kind: str
    data: dict[str, Any]

    def record(self) -> "_Fields":
        return _Fields(self.line_no, "", self.data)


_ParsedLine = _ProfileLine | _EventLine | _OtherLine


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

    def reject_unknown(self, allowed: AbstractSet[str]) -> None:
        if self.data.keys() <= allowed:
            return  # one set comparison in C for the usual line
        for key in self.data:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                raise self.error(key, f"unknown field; expected one of {expected}")

    # required and optional run for every field of every line: one lookup, one call.
    def required(self, key: str, clean: Callable[[object], T]) -> T:
        value = self.data.get(key)
        if value is None:
            raise self.error(key, "is required")
        try:
            return clean(value)
        except InvalidValue as error:
            raise self._invalid(key, error) from None

    def optional(self, key: str, clean: Callable[[object], T]) -> T | None:
        """The cleaned value; None when the key is absent or null."""
        value = self.data.get(key)
        if value is None:
            return None
        try:
            return clean(value)
        except InvalidValue as error:
            raise self._invalid(key, error) from None

    def _invalid(self, key: str, error: InvalidValue) -> ImportRecordError:
        return self.error(f"{key}.{error.field}" if error.field else key, error.reason)

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
        if text.startswith("\ufeff"):  # as json.loads says it (a BOM past the first line)
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        data = _DECODER.decode(text)
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
    data = dict(pairs)
    if len(data) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return data


# One decoder for every line: json.loads with options builds a new one per call, which was
# a fifth of the bulk import's parsing time.
_DECODER = json.JSONDecoder(
    parse_float=Decimal,
    parse_constant=_refuse_constant,
    object_pairs_hook=_object_without_duplicates,
)


def _kind(value: object) -> str:
    if isinstance(value, str) and value in _KIND_NAMES:
        return value  # the common case, already clean
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
    return record.error("customer_id", _unknown(customer_id))


def _unknown(customer_id: str) -> str:
    return f"unknown customer {customer_id}: not in the database and not defined by an earlier line"


def _import_profile(session: Session, record: _Fields) -> Change:
    customer_id, attributes = _profile_in(record)
    try:
        return upsert_profile(session, customer_id, attributes, IdentitySource.IMPORT)
    except CdpError as error:
        raise _profile_error(record, error) from None


def _profile_in(record: _Fields) -> tuple[str, ProfileAttributes]:
    """A profile line validated field by field (no database access)."""
    record.reject_unknown(_PROFILE_FIELDS)
    customer_id = record.required("customer_id", normalise_customer_id)
    return customer_id, ProfileAttributes(
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


def _profile_error(record: _Fields, error: CdpError) -> ImportRecordError:
    """A profile write's error as the line's error, naming the field; others re-raised."""
    if isinstance(error, IdentityConflict | ErasedIdentity):
        return record.error(error.identity_type, str(error))
    if isinstance(error, InvalidValue):
        path = f"custom.{error.field}" if error.field else "custom"
        return record.error(path, error.reason)
    if isinstance(error, UnknownAttribute | AttributeTypeChanged):
        return record.error(f"custom.{error.name}", str(error))
    if isinstance(error, UnverifiedOverwrite):
        path = error.name if error.name in STANDARD_ATTRIBUTES else f"custom.{error.name}"
        return record.error(path, str(error))
    raise error


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
    incoming = _event_in(record)
    try:
        recorded = record_event(session, incoming)
    except ProfileNotFound:
        raise _unknown_customer(record, incoming.customer_id) from None
    return Change.CREATED if recorded else Change.UNCHANGED


def _event_in(record: _Fields) -> EventIn:
    """An event line validated field by field (no database access)."""
    record.reject_unknown(_EVENT_FIELDS)
    customer_id = record.required("customer_id", normalise_customer_id)
    return EventIn(
        event_id=record.required("event_id", partial(clean_text, max_length=EVENT_ID_MAX_LENGTH)),
        customer_id=customer_id,
        type=record.required("type", partial(clean_text, max_length=EVENT_TYPE_MAX_LENGTH)),
        occurred_at=record.required("at", parse_timestamp),
        channel=record.optional(
            "channel", partial(clean_text, max_length=EVENT_CHANNEL_MAX_LENGTH)
        ),
        properties=record.optional("properties", _free_form_object) or {},
    )


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


@dataclass(slots=True)
class _Pending:
    """A validated profile or event line waiting for its chunk to be written."""

    line_no: int
    customer_id: str
    profile: _ProfileLine | None = None
    new_profile: NewProfile | None = None  # None: the one-record path decides
    event: EventIn | None = None
    stored_only: bool = False  # the event's customer is not defined by an earlier line


class _BulkBatch:
    """Profile and event lines buffered and written by cdp.bulk, BULK_CHUNK at a time.

    Results match the one-record path: a line may only use customers stored before the
    import or defined by an earlier line; the first line claiming an identifier gets it;
    profiles that already exist, profiles defined twice, identifiers someone holds (or an
    erased person held) and custom values that fail validation go through upsert_profile,
    which raises the same errors as without bulk.

    On PostgreSQL a full chunk is written by a background thread while the next lines are
    parsed and validated, so the server works (in its own process) while Python reads
    on. Only one chunk is in flight and every other use of the session (flush, finish,
    the one-record path after a flush) waits for it first, so the session is never used
    by two threads at once and errors keep their line order. What add() reads meanwhile
    (`existing`) may lag; a lagging answer only sends a line down the checked path, which
    looks in the database. (SQLite releases the GIL for every row it steps, and a writer
    thread waiting to get it back each time made the import slower.)
    """

    def __init__(self, session: Session, summary: ImportSummary, skip_invalid: bool) -> None:
        self.session = session
        self.summary = summary
        self.skip_invalid = skip_invalid
        self.custom = load_custom_definitions()
        self.computed = load_computed_definitions()
        self.erasures = bool(session.scalar(select(exists().select_from(ErasedIdentifier))))
        self.existing: set[str] = set()  # customers known to have a profile now
        self.fresh: set[str] = set()  # profiles this import created in bulk
        self.fresh_aggregates = NewProfileAggregates(self.computed, utcnow())
        self.unfolded: list[EventIn] = []  # stored events of fresh profiles, to fold
        self.registered: set[str] = set()  # custom attributes whose type is registered
        self.pending: list[_Pending] = []
        self.pending_profiles: set[str] = set()
        self.flushed = 0  # lines handed to cdp.bulk so far
        self.analyze_at = ANALYZE_FIRST_AT
        self.in_background = session.get_bind().dialect.name == "postgresql"
        self.in_flight: _Background | None = None  # the chunk being written
        # Called once a chunk is handed over: what is alive then stays (_rare_collections).
        self.settle_objects: Callable[[], None] = _do_nothing

    def add(self, line: _ParsedLine) -> bool:
        """Buffer a profile or event line; False for other kinds."""
        if isinstance(line, _ProfileLine):
            customer_id = line.customer_id
            item = _Pending(line.line_no, customer_id, profile=line)
            if customer_id not in self.existing and customer_id not in self.pending_profiles:
                item.new_profile = line.new_profile
            self.pending_profiles.add(customer_id)
        elif isinstance(line, _EventLine):
            customer_id = line.event.customer_id
            known = customer_id in self.existing or customer_id in self.pending_profiles
            item = _Pending(line.line_no, customer_id, event=line.event, stored_only=not known)
        else:
            return False
        self.pending.append(item)
        if len(self.pending) >= BULK_CHUNK:
            if self.in_background:
                self._write_in_background()
            else:
                self.flush()
            self.settle_objects()
        return True

    def _write_in_background(self) -> None:
        """Hand the full chunk to the writer thread, and fold the events the chunk before
        stored while the server inserts this chunk's events: folding is Python work, and
        during the writer's own Python work (rows for COPY) the two threads would fight for
        the GIL, while between chunks it would leave the writer idle."""
        self.wait()
        self._spill_if_full()
        unfolded, self.unfolded = self.unfolded, []
        self.in_flight = _Background(partial(self._write, self._take_pending()))
        self.in_flight.server_working.wait()
        self.fresh_aggregates.add(unfolded)

    def flush(self) -> None:
        """Write the buffered lines now, after the chunk in flight; errors are raised
        (lowest line first) or skipped."""
        self.wait()
        self._write(self._take_pending())
        self._fold()
        self._spill_if_full()

    def wait(self) -> None:
        """Let the chunk in flight finish. Its error is raised here, and again on every
        later call: no line after it may be written or reported first."""
        if self.in_flight is not None:
            self.in_flight.result()
            self.in_flight = None

    def _fold(self) -> None:
        """Fold the events the chunks written so far stored for profiles created here."""
        unfolded, self.unfolded = self.unfolded, []
        self.fresh_aggregates.add(unfolded)

    def _spill_if_full(self) -> None:
        """With FRESH_AGGREGATES_LIMIT profiles' aggregates in memory, write them out; those
        profiles' later events then take the path of stored profiles. Only between chunks."""
        if len(self.fresh_aggregates.stores) < FRESH_AGGREGATES_LIMIT:
            return
        self._fold()
        self.fresh -= self.fresh_aggregates.write(self.session)

    def _take_pending(self) -> list[_Pending]:
        pending, self.pending, self.pending_profiles = self.pending, [], set()
        return pending

    def _write(
        self, pending: list[_Pending], on_server_work: Callable[[], None] | None = None
    ) -> None:
        if not pending:
            return
        self.flushed += len(pending)
        if self.flushed >= self.analyze_at:
            refresh_statistics(self.session)
            self.analyze_at *= 2
        errors: list[ImportRecordError] = []
        # Before this chunk's profiles exist: which customers were stored already.
        stored_before = stored_customers(
            self.session, {item.customer_id for item in pending if item.stored_only}
        )
        self._write_profiles(
            [(item, item.profile) for item in pending if item.profile is not None], errors
        )
        events = []
        for item in pending:
            if item.event is None:
                continue
            known = item.customer_id in (stored_before if item.stored_only else self.existing)
            if known:
                events.append(item.event)
            else:
                errors.append(
                    ImportRecordError(item.line_no, "customer_id", _unknown(item.customer_id))
                )
        stored = insert_events(self.session, events, on_server_work=on_server_work)
        self.unfolded.extend(e for e in stored if e.customer_id in self.fresh)
        apply_events_in_bulk(
            self.session,
            [event for event in stored if event.customer_id not in self.fresh],
            self.computed,
            utcnow(),
        )
        counts = self.summary.by_kind["event"]
        counts.read += len(events)
        counts.created += len(stored)
        counts.unchanged += len(events) - len(stored)
        if errors and not self.skip_invalid:
            raise min(errors, key=lambda error: error.line_no)
        self.summary.skipped.extend(errors)

    def finish(self) -> None:
        """Write the last lines, then the event aggregates of the profiles created here."""
        self.flush()
        self.fresh_aggregates.write(self.session)

    def _write_profiles(
        self, items: list[tuple[_Pending, _ProfileLine]], errors: list[ImportRecordError]
    ) -> None:
        stored = stored_customers(
            self.session, {item.customer_id for item, _ in items if item.new_profile is not None}
        )
        self.existing |= stored
        wanted = [
            (kind, value)
            for item, _ in items
            if item.new_profile is not None and item.customer_id not in stored
            for kind, value, _ in item.new_profile.identities
        ]
        claimed = taken_identifiers(self.session, wanted) if wanted else set()
        bulk: list[NewProfile] = []
        one_by_one: list[tuple[_Pending, _ProfileLine]] = []
        for item, line in items:
            new = item.new_profile
            own = line.contacts()
            if (
                new is None
                or item.customer_id in stored
                or (self.erasures and own)
                or any(identifier in claimed for identifier in own)
            ):
                one_by_one.append((item, line))
            else:
                bulk.append(new)
            claimed.update(own)  # a later line with the same identifier must not get it
        self._register_types({name for new in bulk for name in new.declared})
        insert_new_profiles(self.session, bulk)
        self.existing.update(new.customer_id for new in bulk)
        self.fresh.update(new.customer_id for new in bulk)
        counts = self.summary.by_kind["profile"]
        counts.read += len(bulk)
        counts.created += len(bulk)
        for item, line in one_by_one:
            try:
                counts.add(_write_one(self.session, "profile", line.record(), savepoint=True))
                self.existing.add(item.customer_id)
            except ImportRecordError as error:
                errors.append(error)

    def _register_types(self, names: set[str]) -> None:
        for name in sorted(names - self.registered):
            register_type(self.session, self.custom.attributes[name])
            self.registered.add(name)


class _Background:
    """A function run in a thread of its own; result() waits and re-raises its error.

    `server_working` is set once the work only waits for the database (or is over)."""

    def __init__(self, work: Callable[[Callable[[], None]], None]) -> None:
        self.error: BaseException | None = None
        self.server_working = Event()
        self.thread = Thread(target=self._run, args=(work,), name="cdp-bulk-writer")
        self.thread.start()

    def _run(self, work: Callable[[Callable[[], None]], None]) -> None:
        try:
            work(self.server_working.set)
        except BaseException as error:  # handed to the caller by result()
            self.error = error
        finally:
            self.server_working.set()

    def result(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def _contact_identifiers(record: _Fields) -> list[tuple[IdentityType, str]]:
    """The email and phone a profile line would link (normalised), for claim checks."""
    identifiers = []
    for kind in (IdentityType.EMAIL, IdentityType.PHONE):
        try:
            value = record.optional(kind.value, partial(normalise, kind))
        except ImportRecordError:
            continue
        if value is not None:
            identifiers.append((kind, value))
    return identifiers


_IMPORTERS: dict[str, Callable[[Session, _Fields], Change]] = {
    "profile": _import_profile,
    "order": _import_order,
    "event": _import_event,
    "identity": _import_identity,
    "consent": _import_consent,
    "product": _import_product,
}
