"""Why a product reference or a product order was refused."""

from cdp.errors import CdpError


class ProductNotFound(CdpError):
    """No product matches the reference; `suggestions` are the closest names, if any."""

    def __init__(self, ref: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"no product matches {ref!r}{hint}")
        self.ref = ref
        self.suggestions = suggestions


class AmbiguousProduct(CdpError):
    """Several products match equally well; the caller asks which one."""

    def __init__(self, ref: str, candidates: list[str]) -> None:
        super().__init__(f"{ref!r} matches several products: {'; '.join(candidates)}")
        self.ref = ref
        self.candidates = candidates


class ProductUnavailable(CdpError):
    """The product exists but can't be ordered now."""

    def __init__(self, sku: str, name: str) -> None:
        super().__init__(f"product {sku} ({name}) is not available to order")
        self.sku = sku
        self.name = name
