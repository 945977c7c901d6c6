"""`make shell`: chat with the running assistant from the terminal, as a customer.

Messages go over the REST channel with the customer's signed token in the metadata, exactly
as the web chat sends them. Buttons are numbered: type the number to press one.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

import requests

from cdp.identity_token import mint_token
from tools.settings import DEMO_CUSTOMER_ID, local_secret

ANONYMOUS = "anonymous"


def send(rasa_url: str, sender: str, text: str, token: str | None) -> list[dict[str, Any]]:
    metadata = {"customer_token": token} if token else {}
    reply = requests.post(
        f"{rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text, "metadata": metadata},
        timeout=30,
    )
    reply.raise_for_status()
    return reply.json()


def show(messages: list[dict[str, Any]]) -> list[str]:
    """Print the bot's messages; return the payloads of the numbered buttons."""
    payloads: list[str] = []
    for message in messages:
        if text := message.get("text"):
            print(f"bot> {text}")
        for button in message.get("buttons", []):
            payloads.append(button["payload"])
            print(f"     [{len(payloads)}] {button['title']}")
    return payloads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customer",
        default=DEMO_CUSTOMER_ID,
        help=f"customer id to chat as, or '{ANONYMOUS}' (default {DEMO_CUSTOMER_ID})",
    )
    parser.add_argument("--rasa-url", default="http://127.0.0.1:5005")
    args = parser.parse_args()
    token = None
    if args.customer != ANONYMOUS:
        secret = local_secret("CDP_IDENTITY_SECRET", "identity_secret")
        token = mint_token(args.customer, secret, 3600)
    sender = f"shell-{secrets.token_hex(4)}"
    who = "an anonymous visitor" if token is None else f"customer {args.customer}"
    print(f"Chatting as {who} (conversation {sender}). Ctrl-D or /stop to quit.")
    payloads: list[str] = []
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text == "/stop":
            return 0
        if text.isdigit() and 0 < int(text) <= len(payloads):
            text = payloads[int(text) - 1]
        try:
            payloads = show(send(args.rasa_url, sender, text, token))
        except requests.ConnectionError:
            print(
                f"The assistant is not answering at {args.rasa_url}: start it with `make run`.",
                file=sys.stderr,
            )
            return 1


if __name__ == "__main__":
    sys.exit(main())
