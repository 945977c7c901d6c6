"""A small, safe expression language for computed attribute formulas and score rules.

Hand-written tokenizer and recursive-descent parser; evaluation walks the tree with a fixed
table of functions. Nothing reaches Python's eval, exec or attribute access, so a formula
can only read attribute values and call the functions below.

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | STRING | "true" | "false" | "null" | NAME | NAME "(" args ")" | "(" expr ")"

Values: Decimal numbers, strings, booleans, null, dates, datetimes, lists. Arithmetic or an
ordering comparison with null gives null (false in a condition); division by zero gives
null; so does an ordering comparison between a number and a string.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from cdp.errors import CdpError


class FormulaError(CdpError):
    """A formula does not parse or uses something not allowed."""


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: "Node"


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple["Node", ...]


Node = Literal | Name | Unary | Binary | Call

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<=|>=|[-+*/<>(),])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokens(source: str) -> list[_Token]:
    tokens = []
    position = 0
    source = source.rstrip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise FormulaError(
                f"unexpected character {source[position:].strip()[:1]!r} at {position + 1}"
            )
        group = match.lastgroup or ""
        text = match.group(group)
        kind = "keyword" if group == "name" and text in _KEYWORDS else group
        tokens.append(_Token(kind, text, match.start(group) + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(source) + 1))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def take(self, text: str) -> bool:
        """Consume the operator or keyword `text` if it comes next."""
        token = self.current
        if token.kind in ("op", "keyword") and token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise self.unexpected(f"expected {text!r}")

    def unexpected(self, what: str) -> FormulaError:
        token = self.current
        found = "the end" if token.kind == "end" else repr(token.text)
        return FormulaError(f"{what}, found {found} at {token.position}")

    def parse(self) -> Node:
        node = self.or_()
        if self.current.kind != "end":
            raise self.unexpected("expected an operator or the end")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.take("or"):
            node = Binary("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.take("and"):
            node = Binary("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.take("not"):
            return Unary("not", self.not_())
        return self.compare()

    def compare(self) -> Node:
        node = self.sum()
        if self.current.kind == "op" and self.current.text in _COMPARISONS:
            op = self.current.text
            self.index += 1
            node = Binary(op, node, self.sum())
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.current.kind == "op" and self.current.text in "+-":
            op = self.current.text
            self.index += 1
            node = Binary(op, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.current.kind == "op" and self.current.text in "*/":
            op = self.current.text
            self.index += 1
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.current.kind == "op" and self.current.text == "-":
            self.index += 1
            return Unary("-", self.unary())
        return self.atom()

    def atom(self) -> Node:
        token = self.current
        if token.kind == "number":
            self.index += 1
            return Literal(Decimal(token.text))
        if token.kind == "string":
            self.index += 1
            return Literal(re.sub(r"\\(.)", r"\1", token.text[1:-1]))
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            self.index += 1
            return Literal({"true": True, "false": False, "null": None}[token.text])
        if token.kind == "name":
            self.index += 1
            if self.take("("):
                return Call(token.text, self.arguments())
            return Name(token.text)
        if self.take("("):
            node = self.or_()
            self.expect(")")
            return node
        raise self.unexpected("expected a value, a name or '('")

    def arguments(self) -> tuple[Node, ...]:
        if self.take(")"):
            return ()
        args = [self.or_()]
        while self.take(","):
            args.append(self.or_())
        self.expect(")")
        return tuple(args)


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).date()
    if isinstance(value, date):
        return value
    return None


def _days_until(context: "EvalContext", value: Any) -> Decimal | None:
    day = _day(value)
    return None if day is None else Decimal((day - context.today).days)


def _days_since(context: "EvalContext", value: Any) -> Decimal | None:
    day = _day(value)
    return None if day is None else Decimal((context.today - day).days)


def _coalesce(_context: "EvalContext", *values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _numbers(values: tuple[Any, ...]) -> list[Decimal]:
    return [value for value in values if isinstance(value, Decimal)]


def _min(_context: "EvalContext", *values: Any) -> Decimal | None:
    numbers = _numbers(values)
    return min(numbers) if numbers else None


def _max(_context: "EvalContext", *values: Any) -> Decimal | None:
    numbers = _numbers(values)
    return max(numbers) if numbers else None


def _round(_context: "EvalContext", value: Any, places: Any = Decimal(0)) -> Decimal | None:
    if not isinstance(value, Decimal) or not isinstance(places, Decimal):
        return None
    try:
        return value.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more places than Decimal precision allows
        return None


def _abs(_context: "EvalContext", value: Any) -> Decimal | None:
    return abs(value) if isinstance(value, Decimal) else None


def _lower(_context: "EvalContext", value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _length(_context: "EvalContext", value: Any) -> Decimal | None:
    return Decimal(len(value)) if isinstance(value, str | list) else None


def _contains(_context: "EvalContext", container: Any, item: Any) -> bool:
    if isinstance(container, list):
        return item in container
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    return False


@dataclass(frozen=True)
class Function:
    """A whitelisted function with its allowed number of arguments."""

    call: Callable[..., Any]
    min_args: int
    max_args: int | None


FUNCTIONS: dict[str, Function] = {
    "days_until": Function(_days_until, 1, 1),
    "days_since": Function(_days_since, 1, 1),
    "coalesce": Function(_coalesce, 1, None),
    "min": Function(_min, 1, None),
    "max": Function(_max, 1, None),
    "round": Function(_round, 1, 2),
    "abs": Function(_abs, 1, 1),
    "lower": Function(_lower, 1, 1),
    "len": Function(_length, 1, 1),
    "contains": Function(_contains, 2, 2),
}


@dataclass(frozen=True)
class Formula:
    """A parsed formula: its source, tree and the attribute names it reads."""

    source: str
    tree: Node
    names: frozenset[str]


def parse_formula(source: str) -> Formula:
    """Parse and check function names and arities; FormulaError says what and where."""
    if not isinstance(source, str) or not source.strip():
        raise FormulaError("a formula must be a non-empty string")
    tree = _Parser(source).parse()
    for node in _walk(tree):
        if isinstance(node, Call):
            function = FUNCTIONS.get(node.function)
            if function is None:
                known = ", ".join(sorted(FUNCTIONS))
                raise FormulaError(f"unknown function {node.function!r}; known: {known}")
            count = len(node.args)
            if count < function.min_args or (
                function.max_args is not None and count > function.max_args
            ):
                raise FormulaError(f"{node.function}() does not take {count} arguments")
    names = frozenset(node.name for node in _walk(tree) if isinstance(node, Name))
    return Formula(source=source, tree=tree, names=names)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Unary):
        yield from _walk(node.operand)
    elif isinstance(node, Binary):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from _walk(arg)


@dataclass(frozen=True)
class EvalContext:
    """What a formula sees: attribute values by name, and today's date (UTC)."""

    values: dict[str, Any]
    today: date


def evaluate(formula: Formula, context: EvalContext) -> Any:
    """The formula's value for these attributes (null where it can't be computed)."""
    return _eval(formula.tree, context)


def truthy(value: Any) -> bool:
    """Conditions: null, false, zero, empty text and empty lists are false."""
    return bool(value) if value is not None else False


def _eval(node: Node, context: EvalContext) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        return context.values.get(node.name)
    if isinstance(node, Unary):
        operand = _eval(node.operand, context)
        if node.op == "not":
            return not truthy(operand)
        return -operand if isinstance(operand, Decimal) else None
    if isinstance(node, Call):
        args = [_eval(arg, context) for arg in node.args]
        return FUNCTIONS[node.function].call(context, *args)
    if node.op == "and":
        return truthy(_eval(node.left, context)) and truthy(_eval(node.right, context))
    if node.op == "or":
        return truthy(_eval(node.left, context)) or truthy(_eval(node.right, context))
    return _binary(node.op, _eval(node.left, context), _eval(node.right, context))


def _binary(op: str, left: Any, right: Any) -> Any:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return None
    if op in _COMPARISONS:
        try:
            return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[
                op
            ]
        except TypeError:
            return None
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if not isinstance(left, Decimal) or not isinstance(right, Decimal):
        return None
    try:
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        return left / right
    except (InvalidOperation, ZeroDivisionError):
        return None
