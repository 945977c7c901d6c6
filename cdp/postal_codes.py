"""Delivery countries and their postal-code formats, read from `definitions/postal_codes.yml`.

The rules are data (operations add a country without touching code); this module checks a
country a customer typed ("France", "fr", "USA") and a postal code against its format, with
messages that say what was expected.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cdp.addresses import COUNTRY_CODES, POSTAL_CODE_MAX_LENGTH
from cdp.attributes.definitions import DEFINITIONS_DIR, read_yaml_mapping
from cdp.attributes.errors import DefinitionError
from cdp.errors import InvalidValue
from cdp.validation import clean_text

POSTAL_CODES_FILE = DEFINITIONS_DIR / "postal_codes.yml"


@dataclass(frozen=True)
class PostalRule:
    """One delivery country: its code, what customers call it, and its postal-code format."""

    country: str
    names: tuple[str, ...]
    pattern: re.Pattern[str]
    example: str


def _plain(text: str) -> str:
    """Lower case, accents, punctuation and spaces dropped: how names are compared
    ("U.S.A." and "usa", "Österreich" and "osterreich" are the same)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))


@lru_cache(maxsize=4)
def postal_rules(path: Path = POSTAL_CODES_FILE) -> dict[str, PostalRule]:
    """The rules by country code; DefinitionError names the file and entry that is wrong."""
    document = read_yaml_mapping(path)
    countries = document.get("countries")
    if not isinstance(countries, dict) or not countries:
        raise DefinitionError(f"{path}: `countries` must be a non-empty mapping")
    rules = {}
    for code, spec in countries.items():
        where = f"{path}: countries.{code}"
        if code not in COUNTRY_CODES:
            raise DefinitionError(f"{where}: not an ISO 3166-1 alpha-2 code")
        if not isinstance(spec, dict):
            raise DefinitionError(f"{where}: must be a mapping with names, pattern, example")
        names, pattern, example = spec.get("names"), spec.get("pattern"), spec.get("example")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise DefinitionError(f"{where}.names: must be a list of non-empty strings")
        if not isinstance(pattern, str) or not isinstance(example, str):
            raise DefinitionError(f"{where}: pattern and example must be strings")
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise DefinitionError(
                f"{where}.pattern: not a valid regular expression: {error}"
            ) from None
        if not compiled.fullmatch(example.split(" or ")[0].upper()):
            raise DefinitionError(f"{where}.example: {example!r} does not match the pattern")
        rules[code] = PostalRule(code, tuple(_plain(n) for n in names), compiled, example)
    return rules


def delivery_country(value: object, path: Path = POSTAL_CODES_FILE) -> str:
    """The ISO code of a country we deliver to, from its code or a name customers use."""
    text = clean_text(value, max_length=100)
    rules = postal_rules(path)
    if text.upper() in rules:
        return text.upper()
    plain = _plain(text)
    for rule in rules.values():
        if plain in rule.names:
            return rule.country
    raise InvalidValue(
        f"{text!r} is not a country we deliver to (we deliver to {', '.join(sorted(rules))})",
        field="country",
    )


def clean_postal_code(country: str, value: object, path: Path = POSTAL_CODES_FILE) -> str:
    """The postal code in upper case with single spaces, if it has the country's format."""
    rule = postal_rules(path).get(country)
    if rule is None:
        raise InvalidValue(f"we do not deliver to {country}", field="country")
    try:
        text = clean_text(value, max_length=POSTAL_CODE_MAX_LENGTH)
    except InvalidValue as error:
        raise InvalidValue(error.reason, field="postal_code") from None
    code = " ".join(text.upper().split())
    if not rule.pattern.fullmatch(code):
        raise InvalidValue(
            f"{text!r} is not a postal code of {country} (for example {rule.example})",
            field="postal_code",
        )
    return code
