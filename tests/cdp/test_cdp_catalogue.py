"""The product catalogue: import, lookup by what a customer types, ordering by name."""

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cdp.catalogue.errors import AmbiguousProduct, ProductNotFound, ProductUnavailable
from cdp.catalogue.models import Product
from cdp.catalogue.service import find_product, name_key, place_order_for_product
from cdp.changes import Change
from cdp.cli import SEED_FILE
from cdp.computed.service import computed_values
from cdp.db import transaction
from cdp.errors import ImportRecordError, InvalidValue, ProfileNotFound
from cdp.importer import import_file
from cdp.orders.models import Order, OrderStatus

WriteJsonl = Callable[..., Path]


@pytest.fixture
def demo(cdp_engine: Engine) -> Iterator[Session]:
    with transaction(cdp_engine) as session:
        import_file(session, SEED_FILE)
    with Session(cdp_engine, expire_on_commit=False) as session:
        yield session


def test_names_are_normalised_for_lookups() -> None:
    assert name_key("Oat Chocolate-Chip COOKIES, 6-pack") == "oat chocolate chip cookie 6"
    assert name_key("Crème brûlée glasses") == "creme brulee glass"


@pytest.mark.parametrize(
    ("ref", "sku", "how"),
    [
        ("NWC-HOM-MUG-12", "NWC-HOM-MUG-12", "sku"),
        ("nwc-hom-mug-12", "NWC-HOM-MUG-12", "sku"),
        ("stoneware mug, 12 oz", "NWC-HOM-MUG-12", "name"),
        ("Mugs", "NWC-HOM-MUG-12", "words"),
        ("house blend", "NWC-COF-HSE-1KG", "words"),
        ("earl gray tea", "NWC-TEA-EGR-100", "words"),
        ("cokies", "NWC-SNK-CKY-6PK", "words"),
        ("trial mixx", "NWC-SNK-TRM-300", "words"),
        ("the almonds please", "NWC-SNK-ALM-200", "words"),
        ("tea towels", "NWC-HOM-TWL-2PK", "words"),
    ],
)
def test_products_are_found_by_sku_name_or_words(
    demo: Session, ref: str, sku: str, how: str
) -> None:
    match = find_product(demo, ref)
    assert (match.product.sku, match.matched_by) == (sku, how)


def test_an_ambiguous_reference_lists_the_candidates(demo: Session) -> None:
    with pytest.raises(AmbiguousProduct) as ambiguous:
        find_product(demo, "coffee")
    assert ambiguous.value.candidates == [
        "Colombia decaf coffee, 250 g (NWC-COF-DEC-250)",
        "Ethiopia Yirgacheffe coffee, 250 g (NWC-COF-ETH-250)",
        "Northwind House Blend coffee, 1 kg (NWC-COF-HSE-1KG)",
    ]


def test_an_unknown_reference_suggests_close_names(demo: Session) -> None:
    with pytest.raises(ProductNotFound) as missing:
        find_product(demo, "trail mix bars")
    assert missing.value.suggestions[0] == "Trail mix, 300 g"
    with pytest.raises(ProductNotFound, match=r"no product matches 'pizza'$"):
        find_product(demo, "pizza")


def test_ordering_by_name_updates_the_favourite_at_once(demo: Session) -> None:
    order = place_order_for_product(demo, "C-1002", "Earl Grey", 3, "messenger")
    assert order.status is OrderStatus.PLACED
    assert order.currency == "USD"
    assert order.total == Decimal("28.50")
    assert [(line.sku, line.quantity) for line in order.lines] == [("NWC-TEA-EGR-100", 3)]
    assert order.delivery_city == "Austin"
    values = computed_values(demo, "C-1002").values
    assert values["favorite_product"] == "Earl Grey loose leaf tea, 100 g"
    assert values["order_count"] == 3


def test_orders_for_unavailable_or_unknown_products_are_refused(demo: Session) -> None:
    before = demo.scalar(select(Order.order_id).order_by(Order.created_at.desc()).limit(1))
    with pytest.raises(ProductUnavailable, match=r"NWC-HOM-THR-WFL .* is not available"):
        place_order_for_product(demo, "C-1006", "throw blanket", 1, "web")
    with pytest.raises(InvalidValue, match="must be a positive whole number, got 0"):
        place_order_for_product(demo, "C-1006", "mug", 0, "web")
    with pytest.raises(ProfileNotFound):
        place_order_for_product(demo, "C-404", "mug", 1, "web")
    latest = demo.scalar(select(Order.order_id).order_by(Order.created_at.desc()).limit(1))
    assert latest == before


def test_product_import_is_idempotent_and_validated(
    cdp_engine: Engine, write_jsonl: WriteJsonl
) -> None:
    product = {"kind": "product", "sku": "SKU-1", "name": "Beans", "price": 3.5, "currency": "usd"}
    with transaction(cdp_engine) as session:
        first = import_file(session, write_jsonl([product]))
    with transaction(cdp_engine) as session:
        again = import_file(session, write_jsonl([product]))
    changed = {**product, "available": False}
    with transaction(cdp_engine) as session:
        third = import_file(session, write_jsonl([changed]))
    assert first.by_kind["product"].created == 1
    assert again.by_kind["product"].unchanged == 1
    assert third.by_kind["product"].updated == 1
    with Session(cdp_engine) as session:
        stored = session.get_one(Product, "SKU-1")
        assert (stored.price, stored.currency, stored.available) == (Decimal("3.50"), "USD", False)

    for bad, field, reason in [
        ({**product, "price": -1}, "price", "must be a non-negative amount"),
        ({**product, "name": ""}, "name", "must not be empty"),
        ({**product, "available": "yes"}, "available", "must be true or false"),
        ({**product, "colour": "red"}, "colour", "unknown field"),
    ]:
        with pytest.raises(ImportRecordError) as error, transaction(cdp_engine) as session:
            import_file(session, write_jsonl([bad]))
        assert error.value.field == field
        assert reason in error.value.reason


def test_upserting_the_same_catalogue_again_changes_nothing(demo: Session) -> None:
    summary = import_file(demo, SEED_FILE)
    assert summary.by_kind["product"].unchanged == 14
    assert Change.UNCHANGED.value == "unchanged"
