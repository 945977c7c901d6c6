"""Computed attribute definitions, read from a YAML file a data person edits and reviews.

The file is `cdp/definitions/computed_attributes.yml`, or the path in
CDP_COMPUTED_ATTRIBUTES. Three kinds of definition:

- aggregate: count, sum, average, min, max, first, last, most_frequent, unique_list over
  `orders`, `order_lines` or `events`, with an optional `where` filter and `window_days`;
- formula: an expression (cdp.computed.expressions) over other attributes;
- score: points per rule (`when` a condition holds, or `per` unit of a number).

Everything is checked when the file loads: unknown keys, fields, functions and attribute
names, and cycles between definitions, each error naming the definition and the reason.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

from cdp.attributes.definitions import (
    DEFINITIONS_DIR,
    STANDARD_ATTRIBUTES,
    CustomDefinitions,
    check_attribute_name,
    custom_definitions_path,
    load_custom_definitions,
    read_yaml_mapping,
)
from cdp.attributes.errors import DefinitionError
from cdp.computed.expressions import Formula, FormulaError, parse_formula

COMPUTED_ATTRIBUTES_ENV = "CDP_COMPUTED_ATTRIBUTES"
DEFAULT_COMPUTED_ATTRIBUTES = DEFINITIONS_DIR / "computed_attributes.yml"
MAX_WINDOW_DAYS = 3660


class Aggregate(str, Enum):
    """How an aggregate folds the rows it matches."""

    COUNT = "count"
    SUM = "sum"
    AVERAGE = "average"
    MIN = "min"
    MAX = "max"
    FIRST = "first"
    LAST = "last"
    MOST_FREQUENT = "most_frequent"
    UNIQUE_LIST = "unique_list"


# Fields an aggregate may read or filter on, per source; "properties.<key>" is also
# allowed for events.
SOURCE_FIELDS: dict[str, frozenset[str]] = {
    "orders": frozenset(
        {
            "order_id",
            "total",
            "placed_at",
            "status",
            "channel",
            "currency",
            "delivery_city",
            "delivery_country",
        }
    ),
    "order_lines": frozenset(
        {
            "order_id",
            "sku",
            "name",
            "quantity",
            "unit_price",
            "line_total",
            "status",
            "channel",
            "currency",
            "placed_at",
        }
    ),
    "events": frozenset({"event_id", "type", "channel", "occurred_at"}),
}
# Unless a definition filters on status itself, order aggregates skip orders that did not
# go through: a cancelled or returned order is not a purchase.
EXCLUDED_ORDER_STATUSES = ("cancelled", "returned")
_NEEDS_FIELD = {
    Aggregate.SUM,
    Aggregate.AVERAGE,
    Aggregate.MIN,
    Aggregate.MAX,
    Aggregate.FIRST,
    Aggregate.LAST,
    Aggregate.MOST_FREQUENT,
    Aggregate.UNIQUE_LIST,
}
_WINDOWABLE = {Aggregate.COUNT, Aggregate.SUM, Aggregate.AVERAGE}
_AGGREGATE_KEYS = frozenset(
    {"aggregate", "of", "field", "where", "window_days", "weight", "description"}
)


@dataclass(frozen=True)
class AggregateDef:
    """An aggregate over one source; `where` maps a field to the values it may have,
    `exclude` to values it may not have."""

    name: str
    aggregate: Aggregate
    source: str
    field: str | None
    where: tuple[tuple[str, tuple[Any, ...]], ...]
    exclude: tuple[tuple[str, tuple[Any, ...]], ...]
    window_days: int | None
    weight: str | None
    spec_hash: str
    description: str = ""


@dataclass(frozen=True)
class ScoreRule:
    """`when` a condition holds add `points`; or add `points` times the number `per` gives."""

    points: Decimal
    when: Formula | None = None
    per: Formula | None = None


@dataclass(frozen=True)
class FormulaDef:
    """A formula, or a score (a sum of rules); both are evaluated at read time."""

    name: str
    formula: Formula | None
    rules: tuple[ScoreRule, ...] = ()
    description: str = ""

    @property
    def names(self) -> frozenset[str]:
        """Every attribute the definition reads."""
        parts = [self.formula] if self.formula else []
        parts += [rule.when or rule.per for rule in self.rules if rule.when or rule.per]
        return frozenset().union(*(part.names for part in parts if part))


@dataclass(frozen=True)
class ComputedDefinitions:
    """Aggregates by name and formulas in evaluation order (dependencies first)."""

    version: int
    aggregates: dict[str, AggregateDef]
    formulas: tuple[FormulaDef, ...]
    custom: CustomDefinitions = field(repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        return [*self.aggregates, *(formula.name for formula in self.formulas)]

    def max_window_days(self) -> int:
        return max((a.window_days or 0 for a in self.aggregates.values()), default=0)


def computed_definitions_path() -> Path:
    """The definitions file in use: CDP_COMPUTED_ATTRIBUTES or the shipped default."""
    configured = os.environ.get(COMPUTED_ATTRIBUTES_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_COMPUTED_ATTRIBUTES


def load_computed_definitions(
    path: Path | None = None, custom_path: Path | None = None
) -> ComputedDefinitions:
    """The definitions, checked against the custom ones, cached per version of both files."""
    target = (path or computed_definitions_path()).resolve()
    custom_target = (custom_path or custom_definitions_path()).resolve()
    return _load_cached(target, _modified(target), custom_target, _modified(custom_target))


def _modified(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError as error:
        raise DefinitionError(f"cannot read {path}: {error.strerror}") from None


@lru_cache(maxsize=8)
def _load_cached(
    path: Path, _modified_ns: int, custom_path: Path, _custom_modified_ns: int
) -> ComputedDefinitions:
    custom = load_custom_definitions(custom_path)
    document = read_yaml_mapping(path)
    unknown = set(document) - {"version", "attributes"}
    if unknown:
        raise DefinitionError(f"{path}: unknown top-level key {sorted(unknown)[0]!r}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise DefinitionError(f"{path}: version: must be a whole number")
    entries = document.get("attributes") or {}
    if not isinstance(entries, dict):
        raise DefinitionError(f"{path}: attributes: must be a mapping of name to definition")
    aggregates: dict[str, AggregateDef] = {}
    formulas: dict[str, FormulaDef] = {}
    for raw_name, spec in entries.items():
        name = str(raw_name)
        check_attribute_name(path, name)
        if name in STANDARD_ATTRIBUTES or name in custom.attributes:
            raise DefinitionError(f"{path}: {name}: clashes with a standard or custom attribute")
        if not isinstance(spec, dict):
            raise DefinitionError(f"{path}: {name}: must be a mapping")
        try:
            if "aggregate" in spec:
                aggregates[name] = _aggregate(name, spec)
            elif "formula" in spec or "score" in spec:
                formulas[name] = _formula(name, spec)
            else:
                raise DefinitionError("needs one of aggregate, formula or score")
        except (DefinitionError, FormulaError) as error:
            raise DefinitionError(f"{path}: {name}: {error}") from None
    known = set(STANDARD_ATTRIBUTES) | set(custom.attributes) | set(aggregates) | set(formulas)
    for formula in formulas.values():
        missing = sorted(formula.names - known)
        if missing:
            raise DefinitionError(f"{path}: {formula.name}: unknown attribute {missing[0]!r}")
    ordered = _evaluation_order(path, formulas)
    return ComputedDefinitions(
        version=version, aggregates=aggregates, formulas=ordered, custom=custom
    )


def _aggregate(name: str, spec: dict[str, Any]) -> AggregateDef:
    unknown = set(spec) - _AGGREGATE_KEYS
    if unknown:
        raise DefinitionError(
            f"unknown key {sorted(unknown)[0]!r}; "
            f"expected one of {', '.join(sorted(_AGGREGATE_KEYS))}"
        )
    try:
        aggregate = Aggregate(spec["aggregate"])
    except ValueError:
        known = ", ".join(member.value for member in Aggregate)
        raise DefinitionError(
            f"unknown aggregate {spec['aggregate']!r}; expected one of {known}"
        ) from None
    source = spec.get("of")
    if source not in SOURCE_FIELDS:
        raise DefinitionError(f"of: must be one of {', '.join(SOURCE_FIELDS)}, got {source!r}")
    field_name = spec.get("field")
    if aggregate in _NEEDS_FIELD:
        _check_field(source, field_name, "field")
    elif field_name is not None:
        raise DefinitionError("field: count takes no field")
    weight = spec.get("weight")
    if weight is not None:
        if aggregate is not Aggregate.MOST_FREQUENT:
            raise DefinitionError("weight: only for most_frequent")
        _check_field(source, weight, "weight")
    where = spec.get("where") or {}
    if not isinstance(where, dict):
        raise DefinitionError("where: must be a mapping of field to a value or a list of values")
    conditions = []
    for key, wanted in sorted(where.items()):
        _check_field(source, key, "where")
        values = tuple(wanted) if isinstance(wanted, list) else (wanted,)
        if not values or not all(isinstance(v, str | int | float | bool) for v in values):
            raise DefinitionError(f"where.{key}: must be a value or a non-empty list of values")
        conditions.append((key, tuple(_fact_scalar(v) for v in values)))
    excluded: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    if source in ("orders", "order_lines") and "status" not in where:
        excluded = (("status", EXCLUDED_ORDER_STATUSES),)
    window = spec.get("window_days")
    if window is not None:
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or not 0 < window <= MAX_WINDOW_DAYS
        ):
            raise DefinitionError(
                f"window_days: must be a whole number from 1 to {MAX_WINDOW_DAYS}"
            )
        if aggregate not in _WINDOWABLE:
            raise DefinitionError("window_days: only count, sum and average take a window")
    canonical = json.dumps(
        [
            aggregate.value,
            source,
            field_name,
            weight,
            [[k, [str(v) for v in vs]] for k, vs in conditions],
            excluded,
            window,
        ]
    )
    return AggregateDef(
        name=name,
        aggregate=aggregate,
        source=source,
        field=field_name,
        where=tuple(conditions),
        exclude=excluded,
        window_days=window,
        weight=weight,
        spec_hash=hashlib.sha256(canonical.encode()).hexdigest()[:16],
        description=str(spec.get("description") or ""),
    )


def _fact_scalar(value: Any) -> Any:
    """Filter values in the form facts carry: numbers as Decimal."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def _check_field(source: str, field_name: object, key: str) -> None:
    if not isinstance(field_name, str):
        raise DefinitionError(f"{key}: a field name is required")
    if source == "events" and field_name.startswith("properties.") and len(field_name) > 11:
        return
    if field_name not in SOURCE_FIELDS[source]:
        extra = ", properties.<key>" if source == "events" else ""
        raise DefinitionError(
            f"{key}: unknown field {field_name!r} of {source}; expected one of "
            f"{', '.join(sorted(SOURCE_FIELDS[source]))}{extra}"
        )


def _formula(name: str, spec: dict[str, Any]) -> FormulaDef:
    unknown = set(spec) - {"formula", "score", "description"}
    if unknown or ("formula" in spec and "score" in spec):
        raise DefinitionError("a formula has `formula` (or `score`) and an optional description")
    description = str(spec.get("description") or "")
    if "formula" in spec:
        return FormulaDef(
            name=name, formula=parse_formula(spec["formula"]), description=description
        )
    rules = spec["score"]
    if not isinstance(rules, list) or not rules:
        raise DefinitionError("score: must be a non-empty list of rules")
    parsed = []
    for number, rule in enumerate(rules, start=1):
        if (
            not isinstance(rule, dict)
            or set(rule) - {"when", "per", "points"}
            or (("when" in rule) == ("per" in rule))
        ):
            raise DefinitionError(f"score rule {number}: needs points and exactly one of when, per")
        points = rule.get("points")
        if isinstance(points, bool) or not isinstance(points, int | float):
            raise DefinitionError(f"score rule {number}: points must be a number")
        try:
            condition = parse_formula(rule["when"]) if "when" in rule else None
            per = parse_formula(rule["per"]) if "per" in rule else None
        except FormulaError as error:
            raise DefinitionError(f"score rule {number}: {error}") from None
        parsed.append(ScoreRule(points=Decimal(str(points)), when=condition, per=per))
    return FormulaDef(name=name, formula=None, rules=tuple(parsed), description=description)


def _evaluation_order(path: Path, formulas: dict[str, FormulaDef]) -> tuple[FormulaDef, ...]:
    """Formulas sorted so each comes after the formulas it reads; a cycle is an error."""
    ordered: list[FormulaDef] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join([*chain[chain.index(name) :], name])
            raise DefinitionError(f"{path}: {name}: cycle between definitions: {cycle}")
        state[name] = "visiting"
        for dependency in sorted(formulas[name].names & set(formulas)):
            visit(dependency, [*chain, name])
        state[name] = "done"
        ordered.append(formulas[name])

    for name in formulas:
        visit(name, [])
    return tuple(ordered)
