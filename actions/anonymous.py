"""The one answer every flow gives a writer it cannot verify.

Every order, address and after-sales flow says this through `tell_anonymous`, so the
answer (sign in, verify with a one-time code, or talk to a person: `utter_repeat_order_anonymous`)
changes in one place.
"""

from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher


def tell_anonymous(dispatcher: CollectingDispatcher) -> None:
    """Explain that personal data needs a verified identity, and how to get one."""
    dispatcher.utter_message(response="utter_repeat_order_anonymous")
