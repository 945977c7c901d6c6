"""The handoff package is a pure function of what the bot knew: transcript, intent, customer."""

from __future__ import annotations

from datetime import datetime, timezone

from cdp.handoff.package import (
    CustomerFacts,
    HandoffRequest,
    build_package,
    handoff_id_for,
    masked_package,
    transcript_from_events,
)

AT = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
EVENTS = [
    {"event": "user", "text": "old session", "timestamp": 1.0},
    {"event": "session_started", "timestamp": 2.0},
    {"event": "user", "text": "hi", "timestamp": 3.0},
    {"event": "bot", "text": "Hi Ana, welcome back!", "timestamp": 3.1},
    {"event": "user", "text": "/human_handoff", "timestamp": 4.0},
    {"event": "slot", "name": "x", "value": 1, "timestamp": 4.1},
    {"event": "user", "text": "my parcel never arrived", "timestamp": 5.0},
]
ANA = CustomerFacts(
    customer_id="C-1001",
    name="Ana Diaz",
    email="ana.diaz@example.com",
    phone="+15551230001",
    language="en",
    tier="gold",
    lifetime_value=182.5,
    currency="USD",
    open_orders=1,
    tenure_days=400,
)


def request(**overrides: object) -> HandoffRequest:
    values: dict = {
        "conversation_id": "web-1",
        "message_id": "m-7",
        "reason": "user_requested",
        "requested_at": AT,
        "channel": "socketio",
        "intent": "human_handoff",
        "confidence": 0.93,
        "entities": [{"entity": "order_id", "value": "O-5003", "start": 0}],
        "metadata": {"page_url": "https://shop.example/orders", "customer_token": "secret"},
        "events": EVENTS,
        "customer": ANA,
    }
    values.update(overrides)
    return HandoffRequest(**values)


def test_transcript_is_the_current_session_without_button_payloads() -> None:
    assert transcript_from_events(EVENTS) == [
        {"author": "customer", "text": "hi", "at": 3.0},
        {"author": "bot", "text": "Hi Ana, welcome back!", "at": 3.1},
        {"author": "customer", "text": "my parcel never arrived", "at": 5.0},
    ]
    assert len(transcript_from_events(EVENTS[2:] * 20, limit=4)) == 4


def test_package_carries_context_summary_and_customer() -> None:
    package = build_package(request())
    assert package["handoff_id"] == handoff_id_for("web-1", "m-7")
    assert package["requested_at"] == "2026-11-20T15:00:00Z"
    assert package["conversation"] == {"id": "web-1", "channel": "socketio"}
    assert package["reason"] == {"code": "user_requested", "detail": None}
    assert package["intent"] == {
        "name": "human_handoff",
        "confidence": 0.93,
        "entities": [{"entity": "order_id", "value": "O-5003"}],
    }
    assert package["language"] == "en"  # from the profile when the message has none
    # Only known metadata keys: the customer's token never reaches an agent.
    assert package["context"] == {"page_url": "https://shop.example/orders"}
    assert package["customer"]["tier"] == "gold" and package["customer"]["open_orders"] == 1
    assert package["summary"] == (
        "Customer asked for a person; intent human_handoff (0.93); gold tier, 1 open orders; "
        'last said "my parcel never arrived"'
    )


def test_anonymous_visitor_and_long_summary() -> None:
    long_text = "x" * 500
    package = build_package(
        request(customer=None, intent=None, events=[{"event": "user", "text": long_text}])
    )
    assert package["customer"] is None
    assert "anonymous visitor" in package["summary"]
    assert len(package["summary"]) == 200 and package["summary"].endswith("…")


def test_same_request_message_same_id_other_message_other_id() -> None:
    assert build_package(request())["handoff_id"] == build_package(request())["handoff_id"]
    assert build_package(request(message_id="m-8"))["handoff_id"] != handoff_id_for("web-1", "m-7")


def test_personal_data_masked_for_agents_not_for_supervisors() -> None:
    package = build_package(request())
    masked = masked_package(package, may_see_personal_data=False)
    assert masked["customer"]["name"] == "A. D."
    assert masked["customer"]["email"] == "a***@example.com"
    assert masked["customer"]["phone"] == "***01"
    assert masked["customer"]["tier"] == "gold"
    assert masked["personal_data_masked"] is True
    assert package["customer"]["email"] == "ana.diaz@example.com"  # the stored one is intact
    assert masked_package(package, may_see_personal_data=True) == package
