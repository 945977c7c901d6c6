"""The parts of an address a customer wrote into one message ("new adress is 12 Elm St,
Springfield 62704"), so the address form does not ask for them again.

Customers separate the parts with commas, street first: the street is the part that starts
with a house number, the city the part after it (less a postal code and a two-letter state
or province), the country the last part if it names one we deliver to. A postal code is
taken when it has the format of some delivery country; the form checks it against the
country once that is known. Anything less clear is left out, and the form asks for it.
"""

from __future__ import annotations

import re

from cdp.errors import InvalidValue
from cdp.postal_codes import clean_postal_code, delivery_country, postal_rules

LINE1, CITY, COUNTRY, POSTAL_CODE = (
    "address_line1",
    "address_city",
    "address_country",
    "address_postal_code",
)
# A house number ("12", "221B", "5-7") followed by a word: where the street begins.
HOUSE_NUMBER = re.compile(r"\b\d+[A-Za-z]?(?:[-/]\d+)?\s+[^\W\d_]", re.UNICODE)
REGION_CODE = re.compile(r"^[A-Z]{2}$")


def _country(text: str) -> str | None:
    try:
        return delivery_country(text)
    except InvalidValue:
        return None


def _postal_code_fits(candidate: str, country: str | None) -> bool:
    countries = [country] if country else list(postal_rules())
    for code in countries:
        try:
            clean_postal_code(code, candidate)
        except InvalidValue:
            continue
        return True
    return False


def _split_postal_code(part: str, country: str | None) -> tuple[str | None, str]:
    """The postal code at the end or start of `part` (one or two words), and what is left."""
    words = part.split()
    for size in (2, 1):
        if len(words) > size:
            for code_words, rest in ((words[-size:], words[:-size]), (words[:size], words[size:])):
                candidate = " ".join(code_words)
                if any(c.isdigit() for c in candidate) and _postal_code_fits(candidate, country):
                    return candidate, " ".join(rest)
        elif len(words) == size and _postal_code_fits(part, country):
            return part, ""
    return None, part


def _without_region(city: str) -> str:
    """ "Springfield IL" is Springfield: a trailing two-letter state or province is dropped."""
    words = city.split()
    if len(words) > 1 and REGION_CODE.match(words[-1]):
        words = words[:-1]
    return " ".join(words)


def address_in_text(text: str) -> dict[str, str]:
    """The address parts the message spells out: street and city at least, or nothing."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    start = next((i for i, part in enumerate(parts) if HOUSE_NUMBER.search(part)), None)
    if start is None or start + 1 >= len(parts):
        return {}
    street = parts[start][HOUSE_NUMBER.search(parts[start]).start() :]  # type: ignore[union-attr]
    rest = parts[start + 1 :]
    found = {LINE1: street}
    country = _country(rest[-1]) if len(rest) > 1 else None
    if country:
        found[COUNTRY] = country
        rest = rest[:-1]
    postal_code = None
    for index in range(len(rest) - 1, -1, -1):
        postal_code, left = _split_postal_code(rest[index], country)
        if postal_code:
            rest = [*rest[:index], left, *rest[index + 1 :]]
            break
    if postal_code:
        found[POSTAL_CODE] = postal_code
    city = next((_without_region(part) for part in rest if _without_region(part)), None)
    if not city:
        return {}
    found[CITY] = city
    return found
