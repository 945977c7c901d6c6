"""Recording products, finding one by what a customer typed, and ordering it by name.

Lookup, in order: the SKU exactly; the normalised name exactly (case, accents,
punctuation, plurals and filler words ignored); then every word of the reference matching a
word of the name exactly, as a prefix (3+ letters) or with one typo (4+ letters). One best
match is the product; several equally good ones are AmbiguousProduct with the candidates;
none is ProductNotFound with the closest names. The whole catalogue is read in one query
(catalogues are small: hundreds of products, not millions).
"""

import difflib
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.catalogue.errors import AmbiguousProduct, ProductNotFound, ProductUnavailable
from cdp.catalogue.models import Product, ProductIn
from cdp.changes import Change
from cdp.clock import utcnow
from cdp.computed.facts import Fact, order_facts
from cdp.computed.service import apply_order_change
from cdp.errors import ProfileNotFound
from cdp.orders.models import CHANNEL_MAX_LENGTH, Order, OrderLine, OrderStatus
from cdp.orders.service import claim_order_request, order_total, unused_order_id
from cdp.profiles.models import Profile
from cdp.validation import clean_positive_int, clean_text

_FILLER = frozenset({"a", "an", "the", "of", "some", "please", "pack", "set", "x", "and", "my"})
_MAX_CANDIDATES = 5
_MIN_PREFIX = 3
_MIN_TYPO = 4


def _singular(word: str) -> str:
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "ie"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def name_words(text: str) -> list[str]:
    """Lower-case, accent-free, singular words of a name, filler words dropped."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", plain.lower())
    return [_singular(word) for word in words if word not in _FILLER]


def name_key(text: str) -> str:
    """The normalised name stored with a product and compared against references."""
    return " ".join(name_words(text))


def _one_typo(a: str, b: str) -> bool:
    """True when a and b differ by one edit (insert, delete, substitute, or swap)."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diffs) == 1 or (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _word_score(word: str, name: list[str]) -> int:
    """3 exact, 2 prefix, 1 typo, 0 no match: how well one typed word matches a name."""
    best = 0
    for candidate in name:
        if word == candidate:
            return 3
        if len(word) >= _MIN_PREFIX and candidate.startswith(word):
            best = max(best, 2)
        elif len(word) >= _MIN_TYPO and _one_typo(word, candidate):
            best = max(best, 1)
    return best


@dataclass(frozen=True)
class ProductMatch:
    """The product found, and how: sku, name, words."""

    product: Product
    matched_by: str


def find_product(session: Session, ref: str) -> ProductMatch:
    """The one product `ref` means (see module docstring), available or not."""
    text = clean_text(ref, max_length=200)
    by_sku = session.get(Product, text) or session.get(Product, text.upper())
    if by_sku is not None:
        return ProductMatch(by_sku, "sku")
    products = list(session.scalars(select(Product).order_by(Product.name)))
    key = name_key(text)
    exact = [product for product in products if product.name_key == key]
    if len(exact) == 1:
        return ProductMatch(exact[0], "name")
    words = key.split()
    scored = []
    for product in products:
        scores = [_word_score(word, product.name_key.split()) for word in words]
        if words and all(scores):
            scored.append((sum(scores), product))
    if not scored:
        names = difflib.get_close_matches(text, [p.name for p in products], n=3, cutoff=0.5)
        raise ProductNotFound(text, names)
    best = max(score for score, _ in scored)
    top = [product for score, product in scored if score == best]
    if len(top) > 1:
        raise AmbiguousProduct(text, [f"{p.name} ({p.sku})" for p in top[:_MAX_CANDIDATES]])
    return ProductMatch(top[0], "words")


def upsert_product(session: Session, incoming: ProductIn) -> Change:
    """Create or update a product; recording the same values again changes nothing."""
    now = utcnow()
    values = {
        "name": incoming.name,
        "name_key": name_key(incoming.name),
        "price": incoming.price,
        "currency": incoming.currency,
        "available": incoming.available,
    }
    product = session.get(Product, incoming.sku)
    if product is None:
        session.add(Product(sku=incoming.sku, created_at=now, updated_at=now, **values))
        session.flush()
        return Change.CREATED
    changed = False
    for name, value in values.items():
        if getattr(product, name) != value:
            setattr(product, name, value)
            changed = True
    if not changed:
        return Change.UNCHANGED
    product.updated_at = now
    session.flush()
    return Change.UPDATED


def place_order_for_product(
    session: Session,
    customer_id: str,
    product_ref: str,
    quantity: int,
    channel: str,
    *,
    options: dict[str, str] | None = None,
    request_key: str | None = None,
) -> Order:
    """Place a new order of `quantity` of the product `product_ref` names, at today's price.

    Ships to the profile's default address. Refuses an unknown or ambiguous reference
    (ProductNotFound, AmbiguousProduct) and a product not available (ProductUnavailable);
    computed attributes (favourite product...) are updated in the same transaction. With a
    `request_key` a redelivered request returns the order the first one placed.
    """
    quantity = clean_positive_int(quantity)
    profile = session.get(Profile, customer_id)
    if profile is None:
        raise ProfileNotFound(customer_id)
    product = find_product(session, product_ref).product
    if not product.available:
        raise ProductUnavailable(product.sku, product.name)
    order_id = unused_order_id(session)
    claimed: list[Fact] = []
    if request_key is not None:
        claim = claim_order_request(session, customer_id, request_key, order_id, channel)
        if claim.earlier is not None:
            return claim.earlier
        claimed = claim.facts
    line = OrderLine(
        line_no=1,
        sku=product.sku,
        name=product.name,
        quantity=quantity,
        unit_price=product.price,
        options=dict(options or {}),
    )
    now = utcnow()
    order = Order(
        order_id=order_id,
        customer_id=customer_id,
        placed_at=now,
        status=OrderStatus.PLACED,
        channel=clean_text(channel, max_length=CHANNEL_MAX_LENGTH),
        currency=product.currency,
        total=order_total([line]),
        created_at=now,
        lines=[line],
    )
    order.delivery_address = profile.address
    session.add(order)
    session.flush()
    apply_order_change(session, customer_id, [], [*claimed, *order_facts(order)])
    return order
