"""The handoff package: everything an agent needs, built by one pure function.

Inputs are plain values (the tracker's events as dicts, customer facts already read from the
CDP), so the package can be tested without Rasa or a database. Personal data is stored in
full and masked when shown, depending on who looks (`masked_package`).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from cdp.clock import isoformat_z

TRANSCRIPT_LIMIT = 30
SUMMARY_MAX_LENGTH = 200
PERSONAL_FIELDS = ("name", "email", "phone")
# Message metadata worth showing an agent; anything else (tokens!) stays out of the package.
METADATA_KEYS = (
    "page_url",
    "product",
    "order_id",
    "user_agent",
    "referrer",
    "chatwoot_conversation_id",
)
HANDOFF_NAMESPACE = uuid.UUID("6f1d3c2e-1b7a-4f55-9a51-2c3b8e0d4a10")
REASON_LABELS = {
    "user_requested": "Customer asked for a person",
    "nlu_fallback": "Bot did not understand",
    "low_confidence": "Bot was unsure",
    "negative_sentiment": "Customer seems unhappy",
    "policy": "Needs a person by policy",
    "bot_error": "Bot failed",
}


@dataclass(frozen=True)
class CustomerFacts:
    """What the CDP knows about the customer, already reduced to what an agent needs."""

    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    tier: str | None = None
    lifetime_value: float | None = None
    currency: str | None = None
    lead_score: float | None = None
    last_event: dict[str, Any] | None = None
    open_orders: int = 0
    tenure_days: int | None = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HandoffRequest:
    """One request for a person, as seen by the bot when it is made."""

    conversation_id: str
    message_id: str | None
    reason: str
    requested_at: datetime
    channel: str | None = None
    language: str | None = None
    intent: str | None = None
    confidence: float | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    customer: CustomerFacts | None = None
    detail: str | None = None


def handoff_id_for(conversation_id: str, message_id: str | None) -> str:
    """The same request message always yields the same handoff id (a retried action is a no-op)."""
    return str(uuid.uuid5(HANDOFF_NAMESPACE, f"{conversation_id}\n{message_id or ''}"))


def transcript_from_events(
    events: list[dict[str, Any]], limit: int = TRANSCRIPT_LIMIT
) -> list[dict]:
    """The last `limit` customer and bot lines of the current session, oldest first."""
    lines: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "session_started":
            lines = []
        elif kind in ("user", "bot") and event.get("text"):
            text = str(event["text"])
            if kind == "user" and text.startswith("/"):
                continue  # a button payload, not something the customer wrote
            author = "customer" if kind == "user" else "bot"
            at = event.get("timestamp")
            lines.append({"author": author, "text": text, "at": at})
    return lines[-limit:]


def summary_line(request: HandoffRequest, transcript: list[dict[str, Any]]) -> str:
    """One line: why, what about, who, and the customer's last words."""
    parts = [REASON_LABELS.get(request.reason, request.reason)]
    if request.intent:
        confidence = f" ({request.confidence:.2f})" if request.confidence is not None else ""
        parts.append(f"intent {request.intent}{confidence}")
    if request.customer is not None:
        tier = request.customer.tier or "no"
        parts.append(f"{tier} tier, {request.customer.open_orders} open orders")
    else:
        parts.append("anonymous visitor")
    said = [line["text"] for line in transcript if line["author"] == "customer"]
    if said:
        parts.append(f'last said "{said[-1]}"')
    line = "; ".join(parts)
    if len(line) > SUMMARY_MAX_LENGTH:
        line = line[: SUMMARY_MAX_LENGTH - 1] + "…"
    return line


def build_package(request: HandoffRequest) -> dict[str, Any]:
    """The package stored with the handoff and shown in the console (JSON-ready)."""
    transcript = transcript_from_events(request.events)
    customer = asdict(request.customer) if request.customer is not None else None
    language = request.language or (request.customer.language if request.customer else None)
    return {
        "handoff_id": handoff_id_for(request.conversation_id, request.message_id),
        "requested_at": isoformat_z(request.requested_at),
        "conversation": {"id": request.conversation_id, "channel": request.channel},
        "reason": {"code": request.reason, "detail": request.detail},
        "intent": {
            "name": request.intent,
            "confidence": request.confidence,
            "entities": [
                {"entity": e.get("entity"), "value": e.get("value")} for e in request.entities
            ],
        },
        "customer": customer,
        "language": language,
        "context": {k: request.metadata[k] for k in METADATA_KEYS if k in request.metadata},
        "summary": summary_line(request, transcript),
        "transcript": transcript,
    }


def mask_value(field_name: str, value: str | None) -> str | None:
    """Enough to recognise a returning caller, not enough to contact them."""
    if not value:
        return value
    if field_name == "email" and "@" in value:
        local, domain = value.split("@", 1)
        return f"{local[:1]}***@{domain}"
    if field_name == "phone":
        return f"***{value[-2:]}"
    return " ".join(f"{word[:1]}." for word in value.split())


def masked_package(package: dict[str, Any], may_see_personal_data: bool) -> dict[str, Any]:
    """The package as an agent may see it: personal fields masked unless the role allows."""
    customer = package.get("customer")
    if may_see_personal_data or not customer:
        return package
    masked = {**customer, **{f: mask_value(f, customer.get(f)) for f in PERSONAL_FIELDS}}
    return {**package, "customer": masked, "personal_data_masked": True}
