"""`make bench`: turn latency of the real servers over REST, with the CDP on SQLite and PostgreSQL.

In one run and per backend it holds repeat-order conversations (turns whose custom action reads
or writes the CDP) interleaved with turns of the same model that call no custom action, and one
set of long conversations to see whether a turn gets slower as the conversation grows. Results
go to results/bench.md and results/bench.json; the exit code says whether every target held.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests

from cdp.identity_token import mint_token
from tools.databases import for_rasa, throwaway_postgres_database
from tools.paths import REPO, RESULTS
from tools.settings import DEMO_CUSTOMER_ID
from tools.stack import isolated_settings, running_stack, seed_demo_cdp
from tools.training import train

NO_ACTION = "no_action"
CDP_READ = "cdp_read"
CDP_WRITE = "cdp_write"
ACTION_WITHOUT_CDP = "action_without_cdp"

# (message, kind, a phrase the reply must contain: the bench fails loudly if a turn misroutes)
CONVERSATION = (
    ("are you a bot?", NO_ACTION, "virtual assistant"),
    ("same as last time please", CDP_READ, "Shall I place the same order again?"),
    ("thanks!", NO_ACTION, "You're welcome"),
    ("yes", CDP_WRITE, "I've placed order"),
    ("reorder my last order", CDP_READ, "Shall I place the same order again?"),
    ("are you a bot?", NO_ACTION, "virtual assistant"),
    ("no", ACTION_WITHOUT_CDP, "haven't ordered anything"),
)
LONG_TURN = ("same as last time please", CDP_READ, "Shall I place the same order again?")
PROBE_TURNS = (10, 50, 100)
WINDOW = 3  # a probe is the median of turns k-3..k+3, in every long conversation

TARGET_CDP_RATIO = 1.3
TARGET_CDP_P50_MS = 50.0
TARGET_GROWTH_RATIO = 1.5


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass
class Recorder:
    """Sends turns for one customer and keeps their latencies by kind."""

    rasa_url: str
    token: str
    http: requests.Session = field(default_factory=requests.Session)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def turn(self, sender: str, text: str, kind: str | None, expected: str | None) -> float:
        started = time.perf_counter()
        reply = self.http.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, "metadata": {"customer_token": self.token}},
            timeout=30,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        reply.raise_for_status()
        said = " ".join(m.get("text", "") for m in reply.json())
        if expected is not None and expected not in said:
            raise RuntimeError(f"{sender}: {text!r} got {said!r}, expected {expected!r}")
        if kind is not None:
            self.samples.setdefault(kind, []).append(elapsed_ms)
        return elapsed_ms


def mixed_conversations(recorder: Recorder, count: int) -> None:
    for index in range(count):
        sender = f"bench-mixed-{index}-{secrets.token_hex(3)}"
        recorder.turn(sender, "hello", None, None)  # session start: not a steady-state turn
        for text, kind, expected in CONVERSATION:
            recorder.turn(sender, text, kind, expected)


def long_conversations(recorder: Recorder, count: int) -> dict[int, float]:
    length = max(PROBE_TURNS) + WINDOW
    per_turn: dict[int, list[float]] = {turn: [] for turn in range(1, length + 1)}
    for index in range(count):
        sender = f"bench-long-{index}-{secrets.token_hex(3)}"
        for turn in range(1, length + 1):
            text, _, expected = LONG_TURN
            per_turn[turn].append(recorder.turn(sender, text, None, expected))
    return {
        probe: statistics.median(
            ms for turn in range(probe - WINDOW, probe + WINDOW + 1) for ms in per_turn[turn]
        )
        for probe in PROBE_TURNS
    }


@contextmanager
def backend_urls(backend: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """(CDP URL, tracker store URL) of empty databases for one backend."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'cdp.sqlite3'}", f"sqlite:///{workdir / 'tracker.sqlite3'}"
        return
    with ExitStack() as stack:
        cdp_url = stack.enter_context(throwaway_postgres_database("bench_cdp"))
        tracker_url = stack.enter_context(throwaway_postgres_database("bench_tracker"))
        yield cdp_url, for_rasa(tracker_url)


def bench_backend(backend: str, model: Path, conversations: int, long_count: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, backend_urls(backend, Path(tmp)) as urls:
        settings = isolated_settings(model, *urls, Path(tmp))
        seed_demo_cdp(settings, quiet=True)
        with running_stack(settings):
            token = mint_token(DEMO_CUSTOMER_ID, settings.identity_secret, 3600)
            recorder = Recorder(settings.rasa_url, token)
            mixed_conversations(recorder, 5)  # warm-up: caches, connection pools, JIT paths
            recorder.samples.clear()
            mixed_conversations(recorder, conversations)
            growth = long_conversations(recorder, long_count)
    samples = recorder.samples
    cdp = samples[CDP_READ] + samples[CDP_WRITE]
    summary = {
        kind: {
            "n": len(values),
            "p50_ms": percentile(values, 0.5),
            "p95_ms": percentile(values, 0.95),
        }
        for kind, values in {**samples, "cdp": cdp}.items()
    }
    return {
        "turns": summary,
        "cdp_to_no_action_p50": summary["cdp"]["p50_ms"] / summary[NO_ACTION]["p50_ms"],
        "cdp_to_no_action_p95": summary["cdp"]["p95_ms"] / summary[NO_ACTION]["p95_ms"],
        "long_conversation_ms": growth,
        "turn100_to_turn10": growth[100] / growth[10],
    }


def verdicts(results: dict[str, dict]) -> list[tuple[str, bool]]:
    checks = []
    for backend, result in results.items():
        cdp_p50 = result["turns"]["cdp"]["p50_ms"]
        checks += [
            (
                f"{backend}: CDP turn p50 <= {TARGET_CDP_RATIO} x no-action p50",
                result["cdp_to_no_action_p50"] <= TARGET_CDP_RATIO,
            ),
            (f"{backend}: CDP turn p50 < {TARGET_CDP_P50_MS:.0f} ms", cdp_p50 < TARGET_CDP_P50_MS),
            (
                f"{backend}: turn 100 <= {TARGET_GROWTH_RATIO} x turn 10",
                result["turn100_to_turn10"] <= TARGET_GROWTH_RATIO,
            ),
        ]
    return checks


def report(results: dict[str, dict], meta: dict) -> str:
    lines = [
        "# Turn latency benchmark (`make bench`)",
        "",
        f"{meta['when']} on {meta['machine']}; commit {meta['commit']}; "
        f"{meta['conversations']} mixed conversations and {meta['long']} long ones per backend.",
        "Latency is measured by the client over REST (HTTP round trip of one turn, real servers).",
        "",
        "| backend | turn kind | n | p50 ms | p95 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for backend, result in results.items():
        for kind, stats in result["turns"].items():
            lines.append(
                f"| {backend} | {kind} | {stats['n']} | {stats['p50_ms']:.1f} "
                f"| {stats['p95_ms']:.1f} |"
            )
    lines += [
        "",
        "| backend | CDP/no-action p50 | CDP/no-action p95 | turn 10 ms | turn 50 ms "
        "| turn 100 ms | turn 100 / turn 10 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, r in results.items():
        g = r["long_conversation_ms"]
        lines.append(
            f"| {backend} | {r['cdp_to_no_action_p50']:.2f} | "
            f"{r['cdp_to_no_action_p95']:.2f} | {g[10]:.1f} | {g[50]:.1f} | "
            f"{g[100]:.1f} | {r['turn100_to_turn10']:.2f} |"
        )
    lines += ["", "| target | held |", "|---|---|"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in verdicts(results)]
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    return result.stdout.strip() or "uncommitted"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--long", type=int, default=5, help="long conversations per backend")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    args = parser.parse_args()
    model = train()
    results = {
        backend: bench_backend(backend, model, args.conversations, args.long)
        for backend in args.backend or ("sqlite", "postgresql")
    }
    meta = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{len(os.sched_getaffinity(0))} cores",
        "commit": git_commit(),
        "conversations": args.conversations,
        "long": args.long,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    text = report(results, meta)
    (RESULTS / "bench.md").write_text(text)
    print(text)
    failed = [name for name, ok in verdicts(results) if not ok]
    for name in failed:
        print(f"target missed: {name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
