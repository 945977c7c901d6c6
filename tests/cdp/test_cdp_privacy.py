"""Export, erasure with keyed tombstones, and the audit log of personal-data reads."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import cdp
from cdp.clock import parse_timestamp
from cdp.consents.models import ConsentChannel, ConsentIn, ConsentPurpose, ConsentStatus
from cdp.consents.service import record_consent
from cdp.conversations.service import record_conversation
from cdp.errors import (
    ErasedIdentity,
    ErasureKeyMissing,
    ImportRecordError,
    InvalidValue,
    ProfileNotFound,
)
from cdp.events.models import EventIn
from cdp.events.service import record_event
from cdp.identities.service import resolve_or_create_profile
from cdp.importer import import_lines
from cdp.merges.service import merge_profiles
from cdp.models import Base
from cdp.orders.models import OrderLine
from cdp.privacy.audit import audit_entries
from cdp.privacy.keys import ERASURE_KEY_ENV, keyed_hash
from cdp.privacy.models import AuditAction, AuditEntry, ErasedIdentifier, Erasure
from cdp.privacy.service import audited_profile_read, erase_person, export_person

KEY = "erasure-test-key-0123456789"
REPO_ROOT = Path(cdp.__file__).resolve().parent.parent
# Logs of who read whose data: they outlive an erased person by design.
_AUDIT_TABLES = {"audit_log"}


@pytest.fixture
def person(
    session: Session, make_profile: Callable[..., None], make_order: Callable[..., None]
) -> None:
    """C-1 with a merged C-2, orders, events, consents and conversations; C-9 a stranger."""
    make_profile("C-1", first_name="Ana", email="ana@example.com", phone="+15551230001")
    make_profile("C-2", phone="+15551230002", custom={"cup": "M"})
    make_profile("C-9", first_name="Zed", email="zed@example.com")
    make_order("C-1", "O-1", "2026-10-01T10:00:00Z")
    make_order("C-2", "O-2", "2026-10-02T10:00:00Z")
    make_order("C-9", "O-9", "2026-10-03T10:00:00Z")
    record_event(session, EventIn("E-1", "C-1", "visit", parse_timestamp("2026-11-01T00:00:00Z")))
    record_consent(
        session,
        ConsentIn(
            "C-1",
            ConsentPurpose.MARKETING,
            ConsentChannel.EMAIL,
            ConsentStatus.GRANTED,
            parse_timestamp("2026-11-01T00:00:00Z"),
            "web_form",
            "ticked the box",
        ),
    )
    record_conversation(session, "C-1", "socketio", "sid-ana")
    merge_profiles(session, "C-1", "C-2", reason="same phone verified")
    session.flush()


def test_export_holds_everything_about_the_person_and_nobody_else(
    session: Session, person: None
) -> None:
    audited_profile_read(session, "C-1", "agent:jo", "order question")
    document = export_person(session, "phone:+1 555 123 0002")
    assert document["customer_id"] == "C-1"
    json.dumps(document)  # JSON-ready as it is
    [ana, merged] = document["profiles"]
    assert (ana["customer_id"], merged["customer_id"], merged["merged_into"]) == (
        "C-1",
        "C-2",
        "C-1",
    )
    assert {identity["value"] for identity in ana["identities"]} == {
        "ana@example.com",
        "+15551230001",
        "+15551230002",
    }
    assert [order["order_id"] for order in ana["orders"]] == ["O-1", "O-2"]
    assert ana["orders"][0]["items"][0] == {
        "sku": "SKU-1",
        "name": "Flat white beans",
        "qty": 2,
        "unit_price": "3.50",
        "options": {},
    }
    assert [event["event_id"] for event in ana["events"]] == ["E-1"]
    assert ana["consents"][0]["evidence"] == "ticked the box"
    assert ana["conversations"][0]["sender_id"] == "sid-ana"
    assert {row["name"] for row in ana["attribute_values"]} >= {"first_name", "email"}
    assert [merge["merged_id"] for merge in document["merges"]] == ["C-2"]
    assert [entry["actor"] for entry in document["access_log"]] == ["system", "agent:jo"]
    assert "zed@example.com" not in json.dumps(document)
    with pytest.raises(ProfileNotFound):
        export_person(session, "C-404")


def test_erase_deletes_the_person_keeps_tombstones_and_refuses_recreation(
    session: Session, person: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ERASURE_KEY_ENV, KEY)
    stranger_before = _rows_of(session, {"C-9"})
    erasure = erase_person(session, "email:ANA@example.com", "operator:kim", "GDPR art. 17 request")
    assert (erasure.profiles, erasure.identifiers) == (2, 3)
    assert _rows_of(session, {"C-1", "C-2"}) == {}
    assert _rows_of(session, {"C-9"}) == stranger_before
    assert session.scalar(select(func.count()).select_from(OrderLine)) == 1
    stored = session.scalars(select(ErasedIdentifier.value_hmac)).all()
    assert sorted(stored) == sorted(
        keyed_hash(KEY.encode(), kind, value)
        for kind, value in [
            ("email", "ana@example.com"),
            ("phone", "+15551230001"),
            ("phone", "+15551230002"),
        ]
    )
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.ERASE)).one()
    assert (entry.actor, entry.customer_id, entry.purpose) == (
        "operator:kim",
        "C-1",
        "GDPR art. 17 request",
    )
    with pytest.raises(ErasedIdentity, match="erased person"):
        resolve_or_create_profile(session, "phone", "+15551230002")
    recreated = resolve_or_create_profile(session, "phone", "+15551230002", allow_erased=True)
    assert recreated.customer_id not in {"C-1", "C-2"}
    # an old export imported again can't bring the person back either
    old_export = '{"kind": "profile", "customer_id": "C-1", "email": "ana@example.com"}'
    with pytest.raises(ImportRecordError) as refused:
        import_lines(session, [old_export])
    assert refused.value.field == "email" and "erased person" in refused.value.reason
    # a stranger is not affected, and the key is needed to check anything once something is erased
    assert resolve_or_create_profile(session, "email", "zed@example.com").customer_id == "C-9"
    monkeypatch.delenv(ERASURE_KEY_ENV)
    with pytest.raises(ErasureKeyMissing, match=ERASURE_KEY_ENV):
        resolve_or_create_profile(session, "phone", "+15559990000")


def test_erase_needs_the_key_and_a_reason_before_deleting_anything(
    session: Session, person: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ERASURE_KEY_ENV, raising=False)
    before = _row_counts(session)
    with pytest.raises(ErasureKeyMissing):
        erase_person(session, "C-1", "operator", "asked")
    monkeypatch.setenv(ERASURE_KEY_ENV, "short")
    with pytest.raises(ErasureKeyMissing):
        erase_person(session, "C-1", "operator", "asked")
    monkeypatch.setenv(ERASURE_KEY_ENV, KEY)
    with pytest.raises(InvalidValue, match="reason: must not be empty"):
        erase_person(session, "C-1", "operator", " ")
    assert _row_counts(session) == before
    assert session.scalar(select(func.count()).select_from(Erasure)) == 0


def test_audited_profile_read_records_who_why_and_what(session: Session, person: None) -> None:
    document = audited_profile_read(session, "phone:+15551230002", "agent:jo", "delivery question")
    assert document["customer_id"] == "C-1"
    [entry] = [e for e in audit_entries(session, "C-1") if e.action is AuditAction.READ]
    assert (entry.actor, entry.purpose) == ("agent:jo", "delivery question")
    assert "email" in entry.fields and "phone" in entry.fields
    with pytest.raises(InvalidValue, match="actor: must not be empty"):
        audited_profile_read(session, "C-1", "", "x")


def test_cli_export_erase_and_audited_show(
    cdp_engine: Engine, cdp_url: str, tmp_path: Path
) -> None:
    def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k != ERASURE_KEY_ENV}
        return subprocess.run(
            [sys.executable, "-m", "cdp", *args],
            cwd=REPO_ROOT,
            env=environment | {"CDP_DATABASE_URL": cdp_url, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    records = tmp_path / "people.jsonl"
    records.write_text(
        '{"kind": "profile", "customer_id": "C-1", "email": "ana@example.com"}\n', encoding="utf-8"
    )
    assert cli("import", str(records)).returncode == 0
    shown = cli("profile", "show", "email:ana@example.com")
    assert shown.returncode == 0, shown.stderr
    output = tmp_path / "ana.json"
    exported = cli("export", "C-1", "--output", str(output))
    assert exported.returncode == 0, exported.stderr
    assert (
        json.loads(output.read_text(encoding="utf-8"))["profiles"][0]["email"] == "ana@example.com"
    )
    refused = cli("erase", "C-1", "--reason", "customer asked")
    assert refused.returncode == 1 and f"error: {ERASURE_KEY_ENV} is not set" in refused.stderr
    erased = cli("erase", "C-1", "--reason", "customer asked", **{ERASURE_KEY_ENV: KEY})
    assert erased.returncode == 0, erased.stderr
    assert "1 profiles, 1 identifiers" in erased.stdout
    gone = cli("export", "C-1")
    assert gone.returncode == 1 and "unknown customer 'C-1'" in gone.stderr
    with Session(cdp_engine) as session:
        actions = [(e.action, e.purpose) for e in audit_entries(session, "C-1")]
        actors = {e.actor for e in audit_entries(session, "C-1")}
    assert [action for action, _ in actions] == [
        AuditAction.READ,
        AuditAction.EXPORT,
        AuditAction.ERASE,
    ]
    assert len(actors) == 1 and "" not in actors


def _row_counts(session: Session) -> dict[str, int]:
    session.flush()
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


def _rows_of(session: Session, customer_ids: set[str]) -> dict[str, int]:
    """Rows per table that belong to these customers (audit tables keep the id by design)."""
    session.flush()
    counts = {}
    for table in Base.metadata.sorted_tables:
        if table.name in _AUDIT_TABLES or "customer_id" not in table.c:
            continue
        column = table.c.customer_id
        count = session.scalar(
            select(func.count()).select_from(table).where(column.in_(customer_ids))
        )
        if count:
            counts[table.name] = count
    return counts
