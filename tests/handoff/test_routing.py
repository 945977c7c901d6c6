"""Routing: first matching rule, triage score for priority, every decision explained."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdp.handoff.config import DEFAULT_ROUTING_FILE
from cdp.handoff.routing import (
    Features,
    RoutingConfigError,
    features_of,
    load_table,
    parse_table,
    route,
)

SHIPPED = yaml.safe_load(DEFAULT_ROUTING_FILE.read_text())
TABLE = parse_table(SHIPPED)


def decide(**values: Any) -> tuple[str, str, int, list[str]]:
    decision = route(Features(**values), TABLE)
    return decision.rule_id, decision.priority, decision.score, list(decision.matched)


def test_shipped_file_loads() -> None:
    table = load_table(DEFAULT_ROUTING_FILE)
    assert [rule.id for rule in table.rules][:3] == ["fraud", "billing_pages", "vip"]


@pytest.mark.parametrize(
    ("features", "rule", "team"),
    [
        (
            {"text": "someone made an unauthorized charge", "reason": "user_requested"},
            "fraud",
            "fraud",
        ),
        ({"intent": "report_fraud"}, "fraud", "fraud"),
        (
            {"page_url": "https://shop/checkout/pay", "text": "my card was declined"},
            "billing_pages",
            "billing",
        ),
        ({"page_url": "https://shop/home", "text": "my card was declined"}, "default", "general"),
        ({"tier": "gold"}, "vip", "vip_care"),
        ({"lifetime_value": 1500.0}, "vip", "vip_care"),
        ({"language": "fr"}, "french", "support_fr"),
        ({"text": "where is my order"}, "order_problems", "orders"),
        ({"tenure_days": 3}, "new_customers", "general"),
        ({}, "default", "general"),
    ],
)
def test_first_matching_rule_decides_the_team(features: dict, rule: str, team: str) -> None:
    decision = route(Features(**features), TABLE)
    assert (decision.rule_id, decision.team) == (rule, team)
    assert decision.matched  # always says why
    assert "handoff" in decision.labels


def test_order_matters_a_french_gold_member_is_vip() -> None:
    assert decide(tier="gold", language="fr")[0] == "vip"


def test_triage_score_decides_priority_and_rules_only_raise_it() -> None:
    # Standard customer, calm request: 5 (tier) + 5 (reason) = 10 -> low.
    assert decide(tier="standard", reason="user_requested")[1:3] == ("low", 10)
    # Open order and an unhappy customer: 5 + 15 + 10 = 30 -> normal.
    rule, priority, score, _ = decide(tier="standard", reason="negative_sentiment", open_orders=2)
    assert (priority, score) == ("normal", 30)
    # Gold with a broken item: 25 + 5 + 20 (urgency high) -> 50 -> high (vip raises to high anyway).
    assert decide(tier="gold", reason="user_requested", urgency="high")[1:3] == (
        "high",
        50,
    )
    # Fraud words: 40 urgency points, and the fraud rule raises to urgent whatever the score.
    rule, priority, score, why = decide(text="my account was hacked", urgency="urgent")
    assert (rule, priority, score) == ("fraud", "urgent", 40)
    assert "rule raises priority to urgent" in why


def test_lifetime_value_and_lead_score_points_are_capped() -> None:
    parts = route(Features(lifetime_value=10_000.0, lead_score=250), TABLE).score_parts
    assert parts["lifetime_value"] == 15 and parts["lead_score"] == 10


def test_features_from_a_package() -> None:
    package = {
        "transcript": [
            {"author": "customer", "text": "Hello"},
            {"author": "bot", "text": "FRAUD is not in customer text"},
            {"author": "customer", "text": "My parcel never arrived"},
        ],
        "customer": {"tier": "Gold", "lifetime_value": 50.0, "tenure_days": 9, "open_orders": 1},
        "context": {"page_url": "https://x/orders"},
        "intent": {"name": "human_handoff", "entities": [{"entity": "product", "value": "Beans"}]},
        "language": "en",
        "conversation": {"channel": "socketio"},
        "reason": {"code": "user_requested"},
    }
    features = features_of(package, TABLE)
    assert features.text == "hello my parcel never arrived"
    assert (features.tier, features.product, features.urgency) == ("gold", "beans", "high")
    assert (features.channel, features.page_url, features.open_orders) == (
        "socketio",
        "https://x/orders",
        1,
    )


def broken(path: str, value: Any) -> dict:
    document = copy.deepcopy(SHIPPED)
    target = document
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            broken("rules.0.then.team", "sales"),
            "rule 'fraud', field then.team: 'sales' is not one of the teams",
        ),
        (
            broken("rules.2.when", {"tier": "gold"}),
            "rule 'vip', field when.tier: must be a non-empty list of strings",
        ),
        (
            broken("rules.2.when", {"any": [{"tier": ["gold"]}, {"ltv": {"gte": 5}}]}),
            "rule 'vip', field when.any[2].ltv: unknown condition",
        ),
        (
            broken("rules.2.when", {"lifetime_value": {"over": 5}}),
            "rule 'vip', field when.lifetime_value: must map gt, gte",
        ),
        (
            broken("rules.1.when", {"page_url": "(unclosed"}),
            "rule 'billing_pages', field when.page_url: invalid regular expression",
        ),
        (
            broken("rules.3.then", {"priority": "asap"}),
            "rule 'french', field then.priority: 'asap' is not one of",
        ),
        (broken("rules.3.id", "fraud"), "rule 'fraud', field id: is used by an earlier rule"),
        (broken("rules.3.id", "bad id!"), "rule 4, field id: must be 1-64 letters"),
        (broken("rules.3.extra", 1), "rule 'french', field extra: unknown key"),
        (
            broken("defaults.team", "nobody"),
            "section defaults, field team: must be one of the teams",
        ),
        (
            broken("triage.priorities", {"urgent": 70, "high": 45}),
            "section triage, field priorities: must give",
        ),
        (
            broken("business_hours.timezone", "Mars/Base"),
            "section business_hours, field timezone: unknown time zone",
        ),
        (
            broken("business_hours.days", {"mon": ["20:00", "08:00"]}),
            "section business_hours, field days.mon: must open before",
        ),
        (broken("version", 2), "routing file, field version: must be 1"),
    ],
)
def test_invalid_files_name_the_rule_and_field(document: dict, message: str) -> None:
    with pytest.raises(RoutingConfigError) as error:
        parse_table(document)
    assert message in str(error.value)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.yml"
    path.write_text("version: 1\nrules: [\n")
    with pytest.raises(RoutingConfigError, match=str(path)):
        load_table(path)


def test_business_hours() -> None:
    from datetime import datetime, timezone

    hours = parse_table(
        broken(
            "business_hours", {"timezone": "America/Chicago", "days": {"mon": ["08:00", "20:00"]}}
        )
    ).business_hours
    assert hours is not None
    # Monday 2026-11-23 14:00 UTC is 08:00 in Chicago: open; 02:00 UTC is Sunday evening there.
    assert hours.is_open(datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc))
    assert not hours.is_open(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    assert not hours.is_open(datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc))  # Tuesday: closed
