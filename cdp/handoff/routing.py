"""Routing: where a handoff goes (team, priority, labels), from a first-match rule table.

Operations staff edit the table (YAML, `handoff/routing.yml`); it is validated when loaded so
a typo fails loudly with the rule and field, never silently at the first handoff. Features
are read from the package, then the rules are evaluated top-down; both steps are pure.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

LIST_FIELDS = ("intent", "product", "tier", "urgency", "language", "channel", "reason")
NUMBER_FIELDS = ("lifetime_value", "lead_score", "tenure_days", "open_orders")
NUMBER_OPERATORS = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
}
CONDITION_FIELDS = (*LIST_FIELDS, *NUMBER_FIELDS, "keywords", "page_url")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITY_RANKS = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
KEYWORD_MESSAGES = 3


class RoutingConfigError(ValueError):
    """The routing file is invalid; the message names the rule (or section) and the field."""


@dataclass(frozen=True)
class Features:
    """What rules can look at, extracted from a package."""

    text: str = ""
    intent: str | None = None
    product: str | None = None
    tier: str | None = None
    lifetime_value: float | None = None
    lead_score: float | None = None
    urgency: str = "normal"
    language: str | None = None
    channel: str | None = None
    page_url: str | None = None
    tenure_days: float | None = None
    open_orders: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    when: dict[str, Any]
    team: str | None
    priority: str | None
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Triage:
    tier_points: dict[str, int]
    lifetime_value_per_point: float
    lifetime_value_max_points: int
    lead_score_max_points: int
    reason_points: dict[str, int]
    urgency_points: dict[str, int]
    open_order_points: int
    priorities: tuple[tuple[str, int], ...]  # (name, min score), highest first


@dataclass(frozen=True)
class BusinessHours:
    zone: ZoneInfo
    days: dict[int, tuple[time, time]]
    outside_timeout_seconds: int

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        hours = self.days.get(local.weekday())
        return hours is not None and hours[0] <= local.time() < hours[1]


@dataclass(frozen=True)
class RoutingTable:
    default_team: str
    default_labels: tuple[str, ...]
    teams: tuple[str, ...]
    urgency_keywords: dict[str, tuple[str, ...]]
    triage: Triage
    rules: tuple[Rule, ...]
    business_hours: BusinessHours | None = None


@dataclass(frozen=True)
class Decision:
    """Where a handoff goes, and why: stored with the handoff for audit and analytics."""

    rule_id: str
    team: str
    priority: str
    score: int
    labels: tuple[str, ...]
    matched: tuple[str, ...]
    score_parts: dict[str, int] = field(default_factory=dict)

    @property
    def priority_rank(self) -> int:
        return PRIORITY_RANKS[self.priority]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "team": self.team,
            "priority": self.priority,
            "score": self.score,
            "labels": list(self.labels),
            "matched": list(self.matched),
            "score_parts": self.score_parts,
        }


# --- loading and validation -------------------------------------------------------------


def _fail(where: str, field_path: str, reason: str) -> RoutingConfigError:
    return RoutingConfigError(f"{where}, field {field_path}: {reason}")


def _strings(value: Any, where: str, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _fail(where, path, f"must be a non-empty list of strings, got {value!r}")
    return tuple(v.lower() for v in value)


def _int(value: Any, where: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, path, f"must be a whole number >= 0, got {value!r}")
    return value


def _points(value: Any, where: str, path: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise _fail(where, path, f"must be a mapping of name to points, got {value!r}")
    return {str(k).lower(): _int(v, where, f"{path}.{k}") for k, v in value.items()}


def _check_condition(condition: Any, where: str, path: str) -> None:
    if not isinstance(condition, dict) or len(condition) != 1:
        raise _fail(
            where, path, "must be a mapping with exactly one key (all, any, not or a field)"
        )
    ((key, value),) = condition.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise _fail(where, f"{path}.{key}", "must be a non-empty list of conditions")
        for index, inner in enumerate(value):
            _check_condition(inner, where, f"{path}.{key}[{index + 1}]")
    elif key == "not":
        _check_condition(value, where, f"{path}.not")
    elif key in LIST_FIELDS or key == "keywords":
        _strings(value, where, f"{path}.{key}")
    elif key in NUMBER_FIELDS:
        if not isinstance(value, dict) or not value or set(value) - set(NUMBER_OPERATORS):
            raise _fail(
                where, f"{path}.{key}", f"must map {', '.join(NUMBER_OPERATORS)} to numbers"
            )
        for op, number in value.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise _fail(where, f"{path}.{key}.{op}", f"must be a number, got {number!r}")
    elif key == "page_url":
        if not isinstance(value, str):
            raise _fail(where, f"{path}.page_url", "must be a regular expression string")
        try:
            re.compile(value)
        except re.error as error:
            raise _fail(where, f"{path}.page_url", f"invalid regular expression: {error}") from None
    else:
        raise _fail(
            where,
            f"{path}.{key}",
            f"unknown condition; use all, any, not, {', '.join(CONDITION_FIELDS)}",
        )


def _rule(raw: Any, index: int, teams: tuple[str, ...], seen: set[str]) -> Rule:
    where = f"rule {index}"
    if not isinstance(raw, dict):
        raise _fail(where, "$", "must be a mapping with id, when and then")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", rule_id):
        raise _fail(where, "id", f"must be 1-64 letters, digits, _ . -, got {rule_id!r}")
    where = f"rule {rule_id!r}"
    if rule_id in seen:
        raise _fail(where, "id", "is used by an earlier rule")
    seen.add(rule_id)
    unknown = set(raw) - {"id", "when", "then", "description"}
    if unknown:
        raise _fail(
            where, sorted(unknown)[0], "unknown key; a rule has id, description, when, then"
        )
    if "when" not in raw:
        raise _fail(where, "when", "is missing")
    _check_condition(raw["when"], where, "when")
    then = raw.get("then")
    if not isinstance(then, dict) or not then:
        raise _fail(where, "then", "must be a mapping with team, priority and/or labels")
    unknown = set(then) - {"team", "priority", "labels"}
    if unknown:
        raise _fail(where, f"then.{sorted(unknown)[0]}", "unknown key; use team, priority, labels")
    team = then.get("team")
    if team is not None and team not in teams:
        raise _fail(where, "then.team", f"{team!r} is not one of the teams {list(teams)}")
    priority = then.get("priority")
    if priority is not None and priority not in PRIORITY_RANKS:
        raise _fail(where, "then.priority", f"{priority!r} is not one of {list(PRIORITY_RANKS)}")
    labels = _strings(then["labels"], where, "then.labels") if "labels" in then else ()
    return Rule(rule_id, raw["when"], team, priority, labels)


def _triage(raw: Any) -> Triage:
    where = "section triage"
    if not isinstance(raw, dict):
        raise _fail(where, "triage", "must be a mapping")
    priorities = raw.get("priorities")
    if not isinstance(priorities, dict) or set(priorities) != set(PRIORITY_RANKS):
        raise _fail(
            where, "priorities", f"must give a minimum score for each of {list(PRIORITY_RANKS)}"
        )
    bands = tuple(
        sorted(
            (
                (name, _int(score, where, f"priorities.{name}"))
                for name, score in priorities.items()
            ),
            key=lambda band: -band[1],
        )
    )
    if bands[-1][1] != 0:
        raise _fail(where, "priorities", "the lowest band must start at 0 so every score has one")
    per_point = raw.get("lifetime_value_per_point", 100)
    if isinstance(per_point, bool) or not isinstance(per_point, (int, float)) or per_point <= 0:
        raise _fail(where, "lifetime_value_per_point", f"must be a number > 0, got {per_point!r}")
    return Triage(
        tier_points=_points(raw.get("tier_points", {}), where, "tier_points"),
        lifetime_value_per_point=float(per_point),
        lifetime_value_max_points=_int(
            raw.get("lifetime_value_max_points", 0), where, "lifetime_value_max_points"
        ),
        lead_score_max_points=_int(
            raw.get("lead_score_max_points", 0), where, "lead_score_max_points"
        ),
        reason_points=_points(raw.get("reason_points", {}), where, "reason_points"),
        urgency_points=_points(raw.get("urgency_points", {}), where, "urgency_points"),
        open_order_points=_int(raw.get("open_order_points", 0), where, "open_order_points"),
        priorities=bands,
    )


def _clock(value: Any, where: str, path: str) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"\d\d:\d\d", value):
        raise _fail(where, path, f"must be a time like 08:00, got {value!r}")
    hours, minutes = int(value[:2]), int(value[3:])
    if hours == 24 and minutes == 0:
        return time.max
    if hours > 23 or minutes > 59:
        raise _fail(where, path, f"{value!r} is not a time of day")
    return time(hours, minutes)


def _business_hours(raw: Any) -> BusinessHours | None:
    where = "section business_hours"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail(where, "business_hours", "must be a mapping with timezone and days")
    try:
        zone = ZoneInfo(str(raw.get("timezone")))
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(where, "timezone", f"unknown time zone {raw.get('timezone')!r}") from None
    days_raw = raw.get("days")
    if not isinstance(days_raw, dict) or set(days_raw) - set(WEEKDAYS):
        raise _fail(where, "days", f"must map some of {list(WEEKDAYS)} to [open, close]")
    days: dict[int, tuple[time, time]] = {}
    for name, hours in days_raw.items():
        if not isinstance(hours, list) or len(hours) != 2:
            raise _fail(where, f"days.{name}", 'must be [open, close], e.g. ["08:00", "20:00"]')
        opens, closes = (_clock(v, where, f"days.{name}") for v in hours)
        if opens >= closes:
            raise _fail(where, f"days.{name}", "must open before it closes")
        days[WEEKDAYS.index(name)] = (opens, closes)
    timeout = _int(raw.get("outside_timeout_seconds", 0), where, "outside_timeout_seconds")
    return BusinessHours(zone, days, timeout)


def parse_table(document: Any) -> RoutingTable:
    """A validated routing table from the parsed YAML document."""
    if not isinstance(document, dict):
        raise _fail("routing file", "$", "must be a mapping")
    if document.get("version") != 1:
        raise _fail("routing file", "version", f"must be 1, got {document.get('version')!r}")
    teams = _strings(document.get("teams"), "routing file", "teams")
    defaults = document.get("defaults")
    if not isinstance(defaults, dict) or defaults.get("team") not in teams:
        raise _fail("section defaults", "team", f"must be one of the teams {list(teams)}")
    labels = (
        _strings(defaults["labels"], "section defaults", "labels") if "labels" in defaults else ()
    )
    urgency_raw = document.get("urgency_keywords", {})
    if not isinstance(urgency_raw, dict):
        raise _fail("section urgency_keywords", "urgency_keywords", "must map a level to keywords")
    urgency = {
        str(level): _strings(words, "section urgency_keywords", str(level))
        for level, words in urgency_raw.items()
    }
    rules_raw = document.get("rules")
    if not isinstance(rules_raw, list):
        raise _fail("routing file", "rules", "must be a list of rules")
    seen: set[str] = set()
    rules = tuple(_rule(raw, i + 1, teams, seen) for i, raw in enumerate(rules_raw))
    return RoutingTable(
        default_team=defaults["team"],
        default_labels=labels,
        teams=teams,
        urgency_keywords=urgency,
        triage=_triage(document.get("triage")),
        rules=rules,
        business_hours=_business_hours(document.get("business_hours")),
    )


def load_table(path: Path) -> RoutingTable:
    """Read and validate a routing file; errors name the file too."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RoutingConfigError(f"{path}: cannot read: {error}") from None
    try:
        return parse_table(document)
    except RoutingConfigError as error:
        raise RoutingConfigError(f"{path}: {error}") from None


# --- features and evaluation -------------------------------------------------------------


def urgency_of(text: str, table: RoutingTable) -> str:
    """The first urgency level (in file order) whose keywords appear in the text."""
    for level, words in table.urgency_keywords.items():
        if any(word in text for word in words):
            return level
    return "normal"


def features_of(package: dict[str, Any], table: RoutingTable) -> Features:
    """Routing features from a package; absent facts stay None and match no condition."""
    said = [line["text"] for line in package.get("transcript", []) if line["author"] == "customer"]
    text = " ".join(said[-KEYWORD_MESSAGES:]).lower()
    customer = package.get("customer") or {}
    context = package.get("context") or {}
    entities = package.get("intent", {}).get("entities", [])
    product = context.get("product") or next(
        (e["value"] for e in entities if e.get("entity") == "product"), None
    )
    return Features(
        text=text,
        intent=package.get("intent", {}).get("name"),
        product=str(product).lower() if product else None,
        tier=(customer.get("tier") or "").lower() or None,
        lifetime_value=customer.get("lifetime_value"),
        lead_score=customer.get("lead_score"),
        urgency=urgency_of(text, table),
        language=package.get("language"),
        channel=package.get("conversation", {}).get("channel"),
        page_url=context.get("page_url"),
        tenure_days=customer.get("tenure_days"),
        open_orders=customer.get("open_orders") if customer else None,
        reason=package.get("reason", {}).get("code"),
    )


def _matches(condition: dict[str, Any], features: Features, why: list[str]) -> bool:
    ((key, value),) = condition.items()
    if key == "all":
        return all(_matches(inner, features, why) for inner in value)
    if key == "any":
        return any(_matches(inner, features, why) for inner in value)
    if key == "not":
        return not _matches(value, features, [])
    if key == "keywords":
        found = [word for word in value if word.lower() in features.text]
        if found:
            why.append(f"keywords {found} in the customer's messages")
        return bool(found)
    if key == "page_url":
        if features.page_url and re.search(value, features.page_url):
            why.append(f"page_url {features.page_url!r} matches {value!r}")
            return True
        return False
    actual = getattr(features, key)
    if actual is None:
        return False
    if key in LIST_FIELDS:
        hit = str(actual).lower() in {v.lower() for v in value}
        if hit:
            why.append(f"{key}={actual} in {list(value)}")
        return hit
    hit = all(NUMBER_OPERATORS[op](actual, number) for op, number in value.items())
    if hit:
        why.append(f"{key}={actual} satisfies {value}")
    return hit


def triage_score(features: Features, triage: Triage) -> dict[str, int]:
    """Points for customer value (tier, lifetime value, lead score) and request importance."""
    ltv_points = 0
    if features.lifetime_value:
        ltv_points = min(
            int(features.lifetime_value / triage.lifetime_value_per_point),
            triage.lifetime_value_max_points,
        )
    lead_points = 0
    if features.lead_score is not None:
        lead_points = round(
            min(max(features.lead_score, 0), 100) / 100 * triage.lead_score_max_points
        )
    return {
        "tier": triage.tier_points.get(features.tier or "", 0),
        "lifetime_value": ltv_points,
        "lead_score": lead_points,
        "reason": triage.reason_points.get(features.reason or "", 0),
        "urgency": triage.urgency_points.get(features.urgency, 0),
        "open_orders": triage.open_order_points if (features.open_orders or 0) > 0 else 0,
    }


def route(features: Features, table: RoutingTable) -> Decision:
    """First matching rule decides team and labels; the triage score decides the priority,
    never lower than the rule's own priority."""
    parts = triage_score(features, table.triage)
    score = sum(parts.values())
    by_score = next(name for name, minimum in table.triage.priorities if score >= minimum)
    for rule in table.rules:
        why: list[str] = []
        if _matches(rule.when, features, why):
            priority = by_score
            if rule.priority and PRIORITY_RANKS[rule.priority] > PRIORITY_RANKS[by_score]:
                priority = rule.priority
                why.append(f"rule raises priority to {rule.priority}")
            labels = tuple(dict.fromkeys((*table.default_labels, *rule.labels)))
            return Decision(
                rule.id, rule.team or table.default_team, priority, score, labels, tuple(why), parts
            )
    return Decision(
        "default",
        table.default_team,
        by_score,
        score,
        table.default_labels,
        ("no rule matched",),
        parts,
    )
