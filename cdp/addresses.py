"""Postal addresses, stored as plain columns on profiles (default) and orders (delivery)."""

from dataclasses import asdict, dataclass

from cdp.errors import InvalidValue
from cdp.validation import clean_text

# ISO 3166-1 alpha-2: the 249 officially assigned codes.
_ISO_3166_ALPHA_2 = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRY_CODES = frozenset(_ISO_3166_ALPHA_2.split())

LINE_MAX_LENGTH = 200
CITY_MAX_LENGTH = 100
REGION_MAX_LENGTH = 100
POSTAL_CODE_MAX_LENGTH = 20


@dataclass(frozen=True)
class Address:
    """A validated postal address; build it with make_address."""

    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str

    def as_dict(self) -> dict[str, str | None]:
        """JSON-ready form, keys as in import files."""
        return asdict(self)


def normalise_country(value: object) -> str:
    """An ISO 3166-1 alpha-2 code, upper case."""
    code = clean_text(value, max_length=2).upper()
    if code not in COUNTRY_CODES:
        raise InvalidValue(f"{value!r} is not an ISO 3166-1 alpha-2 country code like US or FR")
    return code


def make_address(
    *,
    line1: object,
    city: object,
    postal_code: object,
    country: object,
    line2: object = None,
    region: object = None,
) -> Address:
    """Validate and trim the parts of an address; errors name the part that is wrong."""
    return Address(
        line1=_part("line1", line1, LINE_MAX_LENGTH),
        line2=None if line2 is None else _part("line2", line2, LINE_MAX_LENGTH),
        city=_part("city", city, CITY_MAX_LENGTH),
        region=None if region is None else _part("region", region, REGION_MAX_LENGTH),
        postal_code=_part("postal_code", postal_code, POSTAL_CODE_MAX_LENGTH),
        country=_country_part(country),
    )


ADDRESS_PARTS = ("line1", "line2", "city", "region", "postal_code", "country")


def read_address_columns(record: object, prefix: str) -> Address | None:
    """The Address stored in `record`'s columns named prefix + part (e.g. `delivery_city`)."""
    return address_from_columns(*(getattr(record, prefix + part) for part in ADDRESS_PARTS))


def write_address_columns(record: object, prefix: str, address: Address | None) -> None:
    """Store `address` (or clear it, for None) in `record`'s columns named prefix + part."""
    for part in ADDRESS_PARTS:
        setattr(record, prefix + part, getattr(address, part) if address else None)


def address_from_columns(
    line1: str | None,
    line2: str | None,
    city: str | None,
    region: str | None,
    postal_code: str | None,
    country: str | None,
) -> Address | None:
    """Rebuild an Address from stored columns; None when no address is stored."""
    if line1 is None or city is None or postal_code is None or country is None:
        return None
    return Address(line1, line2, city, region, postal_code, country)


def _part(name: str, value: object, max_length: int) -> str:
    try:
        return clean_text(value, max_length=max_length)
    except InvalidValue as error:
        raise InvalidValue(error.reason, field=name) from None


def _country_part(value: object) -> str:
    try:
        return normalise_country(value)
    except InvalidValue as error:
        raise InvalidValue(error.reason, field="country") from None
