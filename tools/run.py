"""`make run`: prepare the CDP and the model, start the servers and the console, say what to try.

Ctrl-C (or either server dying) stops everything this command started.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from cdp.identity_token import mint_token
from tools.settings import DEMO_CUSTOMER_ID, local_settings
from tools.stack import (
    StackError,
    StackSettings,
    running_stack,
    seed_demo_agents,
    seed_demo_cdp,
)
from tools.training import train

DEMO_TOKEN_TTL_SECONDS = 24 * 3600


def welcome(settings: StackSettings, agents: str) -> str:
    token = mint_token(DEMO_CUSTOMER_ID, settings.identity_secret, DEMO_TOKEN_TTL_SECONDS)
    message = {"sender": "demo-1", "message": "reorder my last order"}
    payload = json.dumps({**message, "metadata": {"customer_token": token}})
    return f"""
The assistant is running. Ctrl-C stops it.

  Rasa server     {settings.rasa_url}   (REST: /webhooks/rest/webhook, socket.io: /socket.io)
  Web chat        {settings.webchat_url}   (anonymous; as {DEMO_CUSTOMER_ID}: the same + #token=…)
                  {settings.webchat_url}#token={token}
  HTTP API        {settings.rasa_url}/status?token={settings.api_token}
  Action server   {settings.action_url}/health
  Agent console   {settings.console_url}   (docs/handoff.md); demo logins:
{agents}
  Logs            {settings.log_dir}

Chat in this terminal as demo customer {DEMO_CUSTOMER_ID} (Ana):   make shell
  ...or as an anonymous visitor:                             make shell CUSTOMER=anonymous
Try: "hi", "same as last time please", "yes", "can I talk to a person".

Or over REST with the customer's signed token (valid 24 h):
  curl -s {settings.rasa_url}/webhooks/rest/webhook -H 'Content-Type: application/json' \\
    -d '{payload}'
"""


def main() -> int:
    try:
        model = train()
    except subprocess.CalledProcessError as error:
        print(f"rasa train failed (exit code {error.returncode})", file=sys.stderr)
        return 1
    settings = local_settings(model)
    seed_demo_cdp(settings)
    agents = seed_demo_agents(settings)
    # Ctrl-C reaches the whole foreground group; the servers run in their own groups and are
    # stopped by running_stack, so here it only has to end the wait below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with running_stack(settings) as servers:
            print(welcome(settings, agents), flush=True)
            while all(server.process.poll() is None for server in servers):
                time.sleep(0.5)
            dead = [s for s in servers if s.process.poll() is not None]
            for server in dead:
                print(f"{server.name} stopped unexpectedly; see {server.log_path}", file=sys.stderr)
            return 1
    except StackError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the assistant...", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
