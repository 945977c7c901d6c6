"""Refusals of attribute writes and definitions, each naming the attribute and why."""

from cdp.errors import CdpError


class UnknownAttribute(CdpError):
    """A custom attribute no definition declares."""

    def __init__(self, name: str) -> None:
        super().__init__(f"attribute {name}: not declared in the custom attribute definitions")
        self.name = name


class UnverifiedOverwrite(CdpError):
    """An unverified value may not replace a verified one; the stored value is kept."""

    def __init__(self, customer_id: str, name: str, source: str) -> None:
        super().__init__(
            f"attribute {name} of {customer_id}: refusing to replace a verified value "
            f"(from {source}) with an unverified one"
        )
        self.customer_id = customer_id
        self.name = name
        self.source = source


class AttributeTypeChanged(CdpError):
    """A definition changes the type of an attribute that already has stored values."""

    def __init__(self, name: str, old_type: str, new_type: str) -> None:
        super().__init__(
            f"attribute {name}: type cannot change from {old_type} to {new_type} "
            "once values are stored"
        )
        self.name = name
        self.old_type = old_type
        self.new_type = new_type


class DefinitionError(CdpError):
    """A definitions file is malformed; the message names the file and the definition."""
