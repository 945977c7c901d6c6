"""JSON Lines import: a good file, every kind of bad line (all-or-nothing), idempotence."""

import copy
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cdp.db import transaction
from cdp.errors import ImportRecordError
from cdp.events.models import Event
from cdp.identities.models import Identity, IdentityType
from cdp.importer import ImportSummary, import_file
from cdp.orders.models import Order, OrderStatus
from cdp.profiles.models import Profile

Record = dict[str, Any]
WriteJsonl = Callable[..., Path]
RowCounts = Callable[[], dict[str, int]]

ANA: Record = {
    "kind": "profile",
    "customer_id": "C-1001",
    "first_name": "Ana",
    "last_name": "Diaz",
    "email": "Ana@Example.com",
    "phone": "+1 555 123 0001",
    "language": "en",
    "address": {
        "line1": "12 Elm St",
        "city": "Springfield",
        "postal_code": "62701",
        "country": "us",
    },
    "custom": {"tier": "gold", "score": 0.75},
}
BEN: Record = {
    "kind": "profile",
    "customer_id": "C-1002",
    "first_name": "Ben",
    "email": "ben@example.com",
}
ORDER: Record = {
    "kind": "order",
    "customer_id": "C-1001",
    "order_id": "O-5001",
    "placed_at": "2026-10-02T20:30:00+02:00",
    "status": "delivered",
    "channel": "web",
    "currency": "USD",
    "items": [
        {
            "sku": "SKU-1",
            "name": "Flat white beans",
            "qty": 2,
            "unit_price": 3.5,
            "options": {"grind": "espresso"},
        },
        {"sku": "SKU-2", "name": "Almonds", "qty": 3, "unit_price": 0.1},
    ],
    "delivery_address": {
        "line1": "1 Main St",
        "line2": "Unit 2",
        "city": "Chicago",
        "region": "IL",
        "postal_code": "60601",
        "country": "US",
    },
}
EVENT: Record = {
    "kind": "event",
    "customer_id": "C-1001",
    "type": "payment_failed",
    "at": "2026-11-20T09:00:00Z",
    "event_id": "E-1",
    "channel": "web",
    "properties": {"amount": 12.5},
}
IDENTITY: Record = {
    "kind": "identity",
    "customer_id": "C-1001",
    "type": "messenger_psid",
    "value": " 2411 ",
    "verified": True,
}
GOOD_FILE: list[Record] = [ANA, BEN, ORDER, EVENT, IDENTITY]


def run_import(engine: Engine, path: Path) -> ImportSummary:
    with transaction(engine) as session:
        return import_file(session, path)


REMOVE = object()


def changed(record: Record, path: str, value: Any) -> Record:
    """A deep copy of record with the value at a dotted path (items[1] = first) replaced,
    or removed when value is REMOVE."""
    result = copy.deepcopy(record)
    target: Any = result
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        target = target[int(part[1:-1]) - 1] if part.startswith("[") else target[part]
    last = parts[-1]
    key: Any = int(last[1:-1]) - 1 if last.startswith("[") else last
    if value is REMOVE:
        del target[key]
    else:
        target[key] = value
    return result


def test_good_file_imports_everything(
    cdp_engine: Engine, write_jsonl: WriteJsonl, row_counts: RowCounts
) -> None:
    summary = run_import(cdp_engine, write_jsonl(["", *GOOD_FILE, "   "]))

    assert summary.records == 5
    assert {
        kind: (c.read, c.created, c.updated, c.unchanged) for kind, c in summary.by_kind.items()
    } == {
        "profile": (2, 2, 0, 0),
        "order": (1, 1, 0, 0),
        "event": (1, 1, 0, 0),
        "identity": (1, 1, 0, 0),
        "consent": (0, 0, 0, 0),
        "product": (0, 0, 0, 0),
    }
    core = {"profiles": 2, "identities": 4, "orders": 1, "order_lines": 2, "events": 1}
    assert {table: row_counts()[table] for table in core} == core
    with Session(cdp_engine) as session:
        ana = session.get_one(Profile, "C-1001")
        assert (ana.email, ana.phone, ana.address_country) == (
            "ana@example.com",
            "+15551230001",
            "US",
        )
        assert ana.custom == {"tier": "gold", "score": 0.75}
        order = session.get_one(Order, "O-5001")
        assert order.placed_at.isoformat() == "2026-10-02T18:30:00+00:00"
        assert order.status is OrderStatus.DELIVERED
        assert order.total == Decimal("7.30")
        assert [
            (line.line_no, line.quantity, line.unit_price, line.options) for line in order.lines
        ] == [
            (1, 2, Decimal("3.50"), {"grind": "espresso"}),
            (2, 3, Decimal("0.10"), {}),
        ]
        assert order.delivery_address is not None and order.delivery_address.city == "Chicago"
        event = session.scalars(select(Event)).one()
        assert (event.type, event.properties) == ("payment_failed", {"amount": 12.5})
        psid = session.scalars(
            select(Identity).where(Identity.type == IdentityType.MESSENGER_PSID)
        ).one()
        assert (psid.customer_id, psid.value, psid.verified) == ("C-1001", "2411", True)


def test_reimport_changes_nothing(
    cdp_engine: Engine, write_jsonl: WriteJsonl, row_counts: RowCounts
) -> None:
    path = write_jsonl(GOOD_FILE)
    run_import(cdp_engine, path)
    counts = row_counts()
    with Session(cdp_engine) as session:
        stamps = session.execute(
            select(Profile.customer_id, Profile.created_at, Profile.updated_at)
        ).all()

    summary = run_import(cdp_engine, path)

    assert all(
        c.created == c.updated == 0 and c.unchanged == c.read for c in summary.by_kind.values()
    )
    assert row_counts() == counts
    with Session(cdp_engine) as session:
        assert (
            session.execute(
                select(Profile.customer_id, Profile.created_at, Profile.updated_at)
            ).all()
            == stamps
        )


def test_reimport_with_changes_updates_only_what_changed(
    cdp_engine: Engine, write_jsonl: WriteJsonl, row_counts: RowCounts
) -> None:
    run_import(cdp_engine, write_jsonl(GOOD_FILE))
    with Session(cdp_engine) as session:
        ben_updated_at = session.get_one(Profile, "C-1002").updated_at
    shipped = changed(ORDER, "status", "returned")
    fewer_items = changed(shipped, "items", shipped["items"][:1])
    summary = run_import(
        cdp_engine, write_jsonl([changed(ANA, "language", "es"), BEN, fewer_items])
    )
    assert summary.by_kind["profile"].updated == 1
    assert summary.by_kind["profile"].unchanged == 1
    assert summary.by_kind["order"].updated == 1
    assert row_counts()["order_lines"] == 1
    with Session(cdp_engine) as session:
        assert session.get_one(Profile, "C-1001").language == "es"
        assert session.get_one(Profile, "C-1002").updated_at == ben_updated_at
        assert session.get_one(Order, "O-5001").total == Decimal("7.00")


def test_utf8_bom_and_crlf_line_endings_are_accepted(
    cdp_engine: Engine, tmp_path: Path, row_counts: RowCounts
) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"kind": "profile", "customer_id": "C-1"}\r\n\r\n'
        b'{"kind": "profile", "customer_id": "C-2"}\r\n'
    )
    assert run_import(cdp_engine, path).records == 2
    assert row_counts()["profiles"] == 2


ORDER_OF_UNKNOWN = changed(ORDER, "customer_id", "C-9999")
BAD_LINES: list[tuple[str, Record | str, str, str]] = [
    ("invalid json", '{"kind": "profile", "customer_id": "C-1"', "$", "not valid JSON"),
    ("not an object", '["profile"]', "$", "must be a JSON object, got array"),
    ("duplicate key", '{"kind": "profile", "kind": "order"}', "$", "duplicate key 'kind'"),
    ("NaN", '{"kind": "order", "unit_price": NaN}', "$", "NaN is not a JSON number"),
    ("missing kind", {"customer_id": "C-1"}, "kind", "is required"),
    ("unknown kind", {"kind": "coupon"}, "kind", "unknown kind 'coupon'"),
    ("unknown field", changed(ANA, "nickname", "Annie"), "nickname", "unknown field"),
    ("missing customer_id", changed(ANA, "customer_id", REMOVE), "customer_id", "is required"),
    (
        "customer_id type",
        changed(ANA, "customer_id", 1001),
        "customer_id",
        "must be a string, got integer",
    ),
    ("bad phone", changed(ANA, "phone", "555-0100"), "phone", "not an international number"),
    ("junk email", changed(ANA, "email", "undefined"), "email", "placeholder"),
    ("bad language", changed(ANA, "language", "english"), "language", "not a language tag"),
    ("address missing city", changed(ANA, "address.city", REMOVE), "address.city", "is required"),
    (
        "bad country",
        changed(ANA, "address.country", "USA"),
        "address.country",
        "at most 2 characters",
    ),
    (
        "unknown country",
        changed(ANA, "address.country", "XX"),
        "address.country",
        "not an ISO 3166-1",
    ),
    ("custom not object", changed(ANA, "custom", [1]), "custom", "must be an object"),
    (
        "verified not bool",
        changed(IDENTITY, "verified", "yes"),
        "verified",
        "must be true or false",
    ),
    ("missing order_id", changed(ORDER, "order_id", REMOVE), "order_id", "is required"),
    (
        "bad timestamp",
        changed(ORDER, "placed_at", "yesterday"),
        "placed_at",
        "not an ISO 8601 timestamp",
    ),
    (
        "naive timestamp",
        changed(ORDER, "placed_at", "2026-10-02T18:30:00"),
        "placed_at",
        "has no timezone",
    ),
    ("unknown status", changed(ORDER, "status", "lost"), "status", "unknown status 'lost'"),
    ("bad currency", changed(ORDER, "currency", "U$D"), "currency", "not a currency code"),
    ("no items", changed(ORDER, "items", []), "items", "must not be empty"),
    ("items not array", changed(ORDER, "items", {"sku": "x"}), "items", "must be an array"),
    ("item not object", changed(ORDER, "items[2]", "SKU-2"), "items[2]", "must be an object"),
    (
        "qty as string",
        changed(ORDER, "items[1].qty", "2"),
        "items[1].qty",
        "must be a whole number, got string",
    ),
    ("qty zero", changed(ORDER, "items[2].qty", 0), "items[2].qty", "positive whole number"),
    (
        "qty fraction",
        changed(ORDER, "items[2].qty", 1.5),
        "items[2].qty",
        "must be a whole number, got number",
    ),
    (
        "negative price",
        changed(ORDER, "items[2].unit_price", -1),
        "items[2].unit_price",
        "non-negative",
    ),
    (
        "price with cents fraction",
        changed(ORDER, "items[1].unit_price", 3.555),
        "items[1].unit_price",
        "at most two decimal places",
    ),
    (
        "price as string",
        changed(ORDER, "items[1].unit_price", "3.50"),
        "items[1].unit_price",
        "must be a number, got string",
    ),
    ("missing sku", changed(ORDER, "items[2].sku", REMOVE), "items[2].sku", "is required"),
    (
        "unknown item field",
        changed(ORDER, "items[1].colour", "red"),
        "items[1].colour",
        "unknown field",
    ),
    (
        "delivery country",
        changed(ORDER, "delivery_address.country", "ZZ"),
        "delivery_address.country",
        "not an ISO 3166-1",
    ),
    (
        "order total too large",
        changed(changed(ORDER, "items[1].qty", 2_000_000_000), "items[1].unit_price", 100),
        "items",
        "order total must be less than",
    ),
    ("event without id", changed(EVENT, "event_id", REMOVE), "event_id", "is required"),
    (
        "event bad time",
        changed(EVENT, "at", "2026-13-01T00:00:00Z"),
        "at",
        "not an ISO 8601 timestamp",
    ),
    (
        "event properties",
        changed(EVENT, "properties", "card_declined"),
        "properties",
        "must be an object",
    ),
    ("identity type", changed(IDENTITY, "type", "fax"), "type", "unknown identity type 'fax'"),
    ("identity junk value", changed(IDENTITY, "value", "anonymous"), "value", "placeholder"),
    (
        "order of unknown customer",
        ORDER_OF_UNKNOWN,
        "customer_id",
        "unknown customer C-9999: not in the database and not defined by an earlier line",
    ),
    (
        "event of unknown customer",
        changed(EVENT, "customer_id", "C-9999"),
        "customer_id",
        "unknown customer C-9999",
    ),
    (
        "identity of unknown customer",
        changed(IDENTITY, "customer_id", "C-9999"),
        "customer_id",
        "unknown customer C-9999",
    ),
    (
        "email owned by another customer",
        changed(BEN, "email", "ana@example.com"),
        "email",
        "email 'ana@example.com' already belongs to C-1001, cannot also link it to C-1002",
    ),
    (
        "identity owned by another customer",
        changed(changed(IDENTITY, "customer_id", "C-1002"), "value", "+15551230001")
        | {"type": "phone"},
        "value",
        "already belongs to C-1001",
    ),
    (
        "order id of another customer",
        changed(ORDER, "customer_id", "C-1002"),
        "order_id",
        "order O-5001 already belongs to C-1001, not to C-1002",
    ),
]


@pytest.mark.parametrize(
    ("bad_line", "field", "reason"),
    [case[1:] for case in BAD_LINES],
    ids=[case[0] for case in BAD_LINES],
)
def test_bad_line_stops_import_and_writes_nothing(
    cdp_engine: Engine,
    write_jsonl: WriteJsonl,
    row_counts: RowCounts,
    bad_line: Record | str,
    field: str,
    reason: str,
) -> None:
    # The stored data, then a file that changes it on every line before the bad one.
    run_import(cdp_engine, write_jsonl(GOOD_FILE, name="first.jsonl"))
    before = row_counts()
    ana_renamed = changed(ANA, "first_name", "Anita")
    carol = {"kind": "profile", "customer_id": "C-1003", "email": "carol@example.com"}
    new_order = changed(changed(ORDER, "order_id", "O-5002"), "customer_id", "C-1003")
    path = write_jsonl([ana_renamed, carol, new_order, "", bad_line], name="second.jsonl")

    with pytest.raises(ImportRecordError) as caught:
        run_import(cdp_engine, path)

    assert (caught.value.line_no, caught.value.field) == (5, field)
    assert reason in caught.value.reason
    assert str(caught.value) == f"line 5: field {field}: {caught.value.reason}"
    assert row_counts() == before
    with Session(cdp_engine) as session:
        assert session.get_one(Profile, "C-1001").first_name == "Ana"


def test_bad_last_line_after_many_good_lines_writes_nothing(
    cdp_engine: Engine, write_jsonl: WriteJsonl, row_counts: RowCounts
) -> None:
    profiles = [
        {"kind": "profile", "customer_id": f"C-{n}", "phone": f"+1555000{n:04d}"}
        for n in range(1, 301)
    ]
    orders = [
        changed(changed(ORDER, "customer_id", f"C-{n}"), "order_id", f"O-{n}")
        for n in range(1, 301)
    ]
    bad = changed(ORDER, "customer_id", "C-1")
    bad = changed(bad, "items[2].unit_price", "free")
    path = write_jsonl([*profiles, *orders, bad])

    with pytest.raises(ImportRecordError) as caught:
        run_import(cdp_engine, path)

    assert (caught.value.line_no, caught.value.field) == (601, "items[2].unit_price")
    assert set(row_counts().values()) == {0}


def test_forward_reference_to_customer_defined_later_is_refused(
    cdp_engine: Engine, write_jsonl: WriteJsonl, row_counts: RowCounts
) -> None:
    path = write_jsonl([BEN, ORDER, ANA])
    with pytest.raises(ImportRecordError) as caught:
        run_import(cdp_engine, path)
    assert (caught.value.line_no, caught.value.field) == (2, "customer_id")
    assert "not defined by an earlier line" in caught.value.reason
    assert set(row_counts().values()) == {0}


def test_conflict_within_one_file_is_refused(
    cdp_engine: Engine, write_jsonl: WriteJsonl, row_counts: RowCounts
) -> None:
    path = write_jsonl([ANA, changed(BEN, "phone", "+15551230001")])
    with pytest.raises(ImportRecordError) as caught:
        run_import(cdp_engine, path)
    assert (caught.value.line_no, caught.value.field) == (2, "phone")
    assert "already belongs to C-1001" in caught.value.reason
    assert set(row_counts().values()) == {0}


def test_invalid_utf8_is_reported_with_its_line(
    cdp_engine: Engine, tmp_path: Path, row_counts: RowCounts
) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        b'{"kind": "profile", "customer_id": "C-1"}\n'
        b'{"kind": "profile", "customer_id": "C-2", "first_name": "Ren\xe9e"}\n'
    )
    with pytest.raises(ImportRecordError) as caught:
        run_import(cdp_engine, path)
    assert (caught.value.line_no, caught.value.field, caught.value.reason) == (
        2,
        "$",
        "not valid UTF-8",
    )
    assert row_counts()["profiles"] == 0
