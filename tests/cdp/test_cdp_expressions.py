"""The formula language and the computed definition file checks (no database needed)."""

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.attributes.errors import DefinitionError
from cdp.computed.definitions import Aggregate, load_computed_definitions
from cdp.computed.expressions import EvalContext, FormulaError, evaluate, parse_formula

TODAY = date(2026, 11, 26)


def value_of(source: str, **values: Any) -> Any:
    return evaluate(parse_formula(source), EvalContext(values, TODAY))


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("1 + 2 * 3", {}, Decimal(7)),
        ("(1 + 2) * 3", {}, Decimal(9)),
        ("-x + 10 / 4", {"x": Decimal(1)}, Decimal("1.5")),
        ("round(10 / 3, 2)", {}, Decimal("3.33")),
        ("round(1, 100)", {}, None),
        ("days_until(end)", {"end": date(2026, 12, 15)}, Decimal(19)),
        ("days_since(at)", {"at": datetime(2026, 11, 20, 23, 0, tzinfo=timezone.utc)}, Decimal(6)),
        ("coalesce(tier, 'basic')", {"tier": None}, "basic"),
        ("min(a, 5) + max(a, 5)", {"a": Decimal(3)}, Decimal(8)),
        ("tier == 'premium' and not card", {"tier": "premium", "card": False}, True),
        ("a > 1 or b", {"a": None, "b": None}, False),
        ("a + 1", {"a": None}, None),
        ("1 / 0", {}, None),
        ("'a' < 1", {}, None),
        ("contains(cats, 'tea')", {"cats": ["coffee", "tea"]}, True),
        ("len(name) >= 3", {"name": "Ana"}, True),
        ("lower(\"ANA\") == 'ana'", {}, True),
        ("abs(-2.5) != 2.5", {}, False),
    ],
)
def test_formulas_evaluate(source: str, values: dict[str, Any], expected: Any) -> None:
    assert value_of(source, **values) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 +", "expected a value, a name or '(', found the end at 4"),
        ("(1 + 2", "expected ')', found the end"),
        ("1 2", "expected an operator or the end, found '2' at 3"),
        ("a.b", "unexpected character '.' at 2"),
        ("__import__('os')", "unknown function '__import__'"),
        ("eval('1')", "unknown function 'eval'"),
        ("round(1, 2, 3)", "round() does not take 3 arguments"),
        ("days_until()", "days_until() does not take 0 arguments"),
        ("   ", "a formula must be a non-empty string"),
    ],
)
def test_bad_formulas_are_refused(source: str, message: str) -> None:
    with pytest.raises(FormulaError) as refused:
        parse_formula(source)
    assert message in str(refused.value)


def test_formula_names_are_collected() -> None:
    assert parse_formula("days_until(a) + coalesce(b, c)").names == {"a", "b", "c"}


def test_shipped_definitions_have_the_built_ins() -> None:
    definitions = load_computed_definitions()
    assert definitions.aggregates["favorite_product"].aggregate is Aggregate.MOST_FREQUENT
    assert definitions.aggregates["lifetime_value"].exclude == (
        ("status", ("cancelled", "returned")),
    )
    formulas = [formula.name for formula in definitions.formulas]
    # Formulas come after the formulas they read.
    assert formulas.index("days_to_contract_end") < formulas.index("contract_renewal_due")
    for name in ("order_count", "last_order_at", "most_frequent_delivery_city", "last_event"):
        assert name in definitions.aggregates
    assert "lead_score" in formulas


def load_body(tmp_path: Path, body: str) -> None:
    path = tmp_path / "computed.yml"
    path.write_text("version: 1\nattributes:\n" + body, encoding="utf-8")
    load_computed_definitions(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  x: {formula: 'nope + 1'}\n", "x: unknown attribute 'nope'"),
        ("  x: {formula: 'exec(1)'}\n", "x: unknown function 'exec'"),
        (
            "  a: {formula: 'b + 1'}\n  b: {formula: 'c + 1'}\n  c: {formula: 'a + 1'}\n",
            "a: cycle between definitions: a -> b -> c -> a",
        ),
        ("  a: {formula: 'a + 1'}\n", "a: cycle between definitions: a -> a"),
        ("  x: {aggregate: median, of: orders}\n", "x: unknown aggregate 'median'"),
        ("  x: {aggregate: sum, of: orders, field: colour}\n", "x: field: unknown field 'colour'"),
        ("  x: {aggregate: count, of: carts}\n", "x: of: must be one of"),
        ("  x: {aggregate: max, of: orders, field: total, window_days: 7}\n", "only count, sum"),
        ("  x: {aggregate: count, of: events, window_days: 0}\n", "window_days: must be"),
        ("  x: {aggregate: count, of: orders, weight: total}\n", "weight: only for most_frequent"),
        ("  x: {score: [{points: 5}]}\n", "score rule 1: needs points and exactly one of"),
        ("  x: {score: [{when: 'a >', points: 5}]}\n", "score rule 1: expected a value"),
        ("  membership_tier: {formula: '1'}\n", "clashes with a standard or custom attribute"),
        ("  x: {colour: red}\n", "x: needs one of aggregate, formula or score"),
    ],
)
def test_bad_definitions_name_the_definition_and_reason(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(DefinitionError) as refused:
        load_body(tmp_path, body)
    assert message in str(refused.value)


def test_event_property_fields_and_filters_are_allowed(tmp_path: Path) -> None:
    load_body(
        tmp_path,
        "  big_spend: {aggregate: sum, of: events, field: properties.amount,\n"
        "              where: {type: [purchase, refund], properties.currency: USD}}\n",
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab01 .+-*/()<>=!,'\"andortuely_mix", max_size=40))
def test_any_text_parses_or_is_refused_and_never_crashes_evaluation(source: str) -> None:
    try:
        formula = parse_formula(source)
    except FormulaError:
        return
    context = EvalContext({"a": Decimal(1), "b": None, "ab": "text"}, TODAY)
    evaluate(formula, context)
