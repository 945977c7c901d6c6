"""Why a change to an existing order was refused."""

from cdp.errors import CdpError


class OrderTooLate(CdpError):
    """The order has left the warehouse (or is closed), so it can't be cancelled or changed."""

    def __init__(self, order_id: str, status: str, change: str) -> None:
        super().__init__(f"order {order_id} is {status}: too late to {change} it")
        self.order_id = order_id
        self.status = status
        self.change = change
