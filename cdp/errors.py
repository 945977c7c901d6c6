"""Errors the CDP raises on purpose, so callers can tell a user's mistake from a bug.

Every message is one line fit to show to whoever supplied the input.
"""


class CdpError(Exception):
    """Base of every deliberate CDP error."""


class InvalidValue(CdpError, ValueError):
    """A value failed validation.

    `field` names the offending part when the validator knows it (e.g. "country" inside an
    address); callers that know where the value came from prefix their own path.
    """

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class InvalidIdentifier(InvalidValue):
    """An identifier (phone, email, PSID...) or a profile reference is malformed or junk."""


class ProfileNotFound(CdpError):
    """No profile has this customer id."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"unknown customer {customer_id!r}")
        self.customer_id = customer_id


class IdentityConflict(CdpError):
    """The identifier already belongs to another profile; one identifier points at one person."""

    def __init__(self, identity_type: str, value: str, owner_id: str, requested_id: str) -> None:
        super().__init__(
            f"{identity_type} {value!r} already belongs to {owner_id}, "
            f"cannot also link it to {requested_id}"
        )
        self.identity_type = identity_type
        self.value = value
        self.owner_id = owner_id
        self.requested_id = requested_id


class OrderNotFound(CdpError):
    """The order does not exist or belongs to another customer (callers can't tell which)."""

    def __init__(self, customer_id: str, order_id: str) -> None:
        super().__init__(f"customer {customer_id} has no order {order_id!r}")
        self.customer_id = customer_id
        self.order_id = order_id


class OrderConflict(CdpError):
    """An order id is already used by another customer's order."""

    def __init__(self, order_id: str, owner_id: str, requested_id: str) -> None:
        super().__init__(f"order {order_id} already belongs to {owner_id}, not to {requested_id}")
        self.order_id = order_id
        self.owner_id = owner_id
        self.requested_id = requested_id


class OrderNotReorderable(CdpError):
    """The order exists but can't be repeated (it was cancelled)."""

    def __init__(self, order_id: str, status: str) -> None:
        super().__init__(f"order {order_id} is {status} and cannot be reordered")
        self.order_id = order_id
        self.status = status


class ImportRecordError(CdpError):
    """One line of an import file is wrong; the whole import is rolled back.

    `line_no` is 1-based. `field` is a dotted path into the record, with list items numbered
    from 1 like order lines (`items[1].qty` is the first item); `$` means the line as a whole.
    """

    def __init__(self, line_no: int, field: str, reason: str) -> None:
        super().__init__(f"line {line_no}: field {field}: {reason}")
        self.line_no = line_no
        self.field = field
        self.reason = reason


class ErasedIdentity(CdpError):
    """The identifier belonged to a person who was erased; re-creating them needs consent."""

    def __init__(self, identity_type: str) -> None:
        super().__init__(
            f"this {identity_type} belonged to an erased person; a new profile is created "
            "only when re-creation is explicitly allowed"
        )
        self.identity_type = identity_type


class ErasureKeyMissing(CdpError):
    """CDP_ERASURE_KEY is needed to hash erased identifiers and is not set."""

    def __init__(self, variable: str) -> None:
        super().__init__(
            f"{variable} is not set; export a secret (at least 16 characters) to erase people "
            "or to check identifiers against erased ones"
        )


class MergeRefused(CdpError):
    """A merge or unmerge can't be done as asked; the message says why."""


class MergeNotFound(CdpError):
    """No merge has this id."""

    def __init__(self, merge_id: int) -> None:
        super().__init__(f"unknown merge {merge_id}")
        self.merge_id = merge_id
