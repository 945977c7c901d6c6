"""CDP benchmark: bulk import, profile context reads, event ingestion, history growth.

On each backend it generates a deterministic synthetic file (profiles with standard and
custom attributes, then events spread over 400 days, plus two profiles with a short and a
very long history), loads it with the bulk import (that load is the import measurement),
then measures in its own transactions, as the actions and the API run them:

- profile_context by phone or email (standard, custom and computed values in one call);
- one event with record_event (every dependent computed value updated, then commit);
- batches of events through the bulk path (import --bulk of a batch file);
- one event for the profile with a long history against the profile with a short one.

Results go to results/bench-cdp.md and .json; exit 1 if a target is missed. Sizes come
from the command line; --quick is a small run for development.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cdp.clock import parse_timestamp
from cdp.db import make_engine, migrate, transaction
from cdp.events.models import EventIn
from cdp.events.service import record_event
from cdp.importer import import_file, import_lines
from cdp.profiles.context import profile_context
from tools.databases import throwaway_postgres_database

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"
SEED = 20261126
SHORT_HISTORY = 100

TARGET_CONTEXT_P95_MS = 5.0
TARGET_EVENT_P95_MS = 10.0
TARGET_BATCH_EVENTS_PER_S = 5_000.0
TARGET_IMPORT_RECORDS_PER_S = 20_000.0
TARGET_HISTORY_RATIO = 1.5

EVENT_TYPES = ("page_view", "login", "order_viewed", "cart_updated", "payment_failed")
EVENT_WEIGHTS = (50, 20, 15, 10, 5)
TIERS = ("basic", "plus", "premium")
CITIES = ("Austin", "Chicago", "Lyon", "Milan", "Springfield")


def customer_id(number: int) -> str:
    return f"C-{number:08d}"


def phone(number: int) -> str:
    return f"+1555{number:07d}"


def email(number: int) -> str:
    return f"customer{number}@example.com"


def profile_record(number: int, rng: random.Random) -> dict[str, Any]:
    """A profile as a CRM export would have it: contact details, address, custom values."""
    return {
        "kind": "profile",
        "customer_id": customer_id(number),
        "first_name": rng.choice(("Ana", "Ben", "Chloé", "Dev", "Marcus", "Sofia")),
        "last_name": rng.choice(("Diaz", "Okafor", "Martin", "Patel", "Rossi")),
        "email": email(number),
        "phone": phone(number),
        "language": rng.choice(("en", "fr", "it", "es")),
        "address": {
            "line1": f"{number} Elm St",
            "city": rng.choice(CITIES),
            "postal_code": f"{10000 + number % 89999}",
            "country": "US",
        },
        "custom": {
            "membership_tier": rng.choice(TIERS),
            "store_card_holder": rng.random() < 0.3,
        },
    }


def event_record(event_id: str, customer: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "kind": "event",
        "customer_id": customer,
        "type": rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0],
        "at": at.isoformat().replace("+00:00", "Z"),
        "event_id": event_id,
        "channel": rng.choice(("web", "sms", "messenger")),
        "properties": {"page": rng.randint(1, 50)},
    }


def write_synthetic_file(
    path: Path, profiles: int, events: int, history: int, now: datetime
) -> dict[str, int]:
    """Profiles 1..profiles, `events` events on random profiles over the last 400 days, and
    profiles 0 and profiles+1 with SHORT_HISTORY and `history` events. Same seed, same file."""
    rng = random.Random(SEED)
    counts = {"profiles": 0, "events": 0}
    with path.open("w", encoding="utf-8") as out:

        def emit(record: dict[str, Any]) -> None:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            counts[record["kind"] + "s"] += 1

        for number in range(0, profiles + 2):
            emit(profile_record(number, rng))
        for number in range(events):
            at = now - timedelta(seconds=rng.uniform(3600, 400 * 86400))
            emit(event_record(f"E-{number}", customer_id(rng.randint(1, profiles)), at, rng))
        for owner, size in ((0, SHORT_HISTORY), (profiles + 1, history)):
            for number in range(size):
                at = now - timedelta(seconds=rng.uniform(3600, 400 * 86400))
                emit(event_record(f"H-{owner}-{number}", customer_id(owner), at, rng))
    return counts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def latency_summary(samples: list[float]) -> dict[str, float]:
    """Milliseconds: p50, p95, p99, max, and the sample count."""
    return {
        "samples": len(samples),
        "p50_ms": round(percentile(samples, 0.50) * 1000, 3),
        "p95_ms": round(percentile(samples, 0.95) * 1000, 3),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
    }


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure_import(engine: Engine, path: Path, records: int) -> dict[str, float]:
    started = time.perf_counter()
    with transaction(engine) as session:
        summary = import_file(session, path, bulk=True)
    seconds = time.perf_counter() - started
    if summary.records != records or summary.skipped:
        raise RuntimeError(f"imported {summary.records} of {records} records")
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1),
    }


def measure_context(engine: Engine, profiles: int, samples: int) -> dict[str, Any]:
    rng = random.Random(SEED + 1)
    timings = []
    for index in range(samples):
        number = rng.randint(1, profiles)
        ref = f"phone:{phone(number)}" if index % 2 else f"email:{email(number)}"

        def read(ref: str = ref, number: int = number) -> None:
            with transaction(engine) as session:
                context = profile_context(session, ref)
                if context is None or context.customer_id != customer_id(number):
                    raise RuntimeError(f"profile_context({ref}) found the wrong profile")

        timings.append(timed(read))
    return latency_summary(timings)


def one_event(engine: Engine, customer: str, event_id: str, rng: random.Random) -> float:
    record = event_record(event_id, customer, datetime.now(timezone.utc), rng)
    incoming = EventIn(
        event_id=record["event_id"],
        customer_id=customer,
        type=record["type"],
        occurred_at=parse_timestamp(record["at"]),
        channel=record["channel"],
        properties=record["properties"],
    )

    def write() -> None:
        with transaction(engine) as session:
            if not record_event(session, incoming):
                raise RuntimeError(f"event {event_id} was not stored")

    return timed(write)


def measure_single_events(engine: Engine, profiles: int, samples: int) -> dict[str, Any]:
    rng = random.Random(SEED + 2)
    timings = [
        one_event(engine, customer_id(rng.randint(1, profiles)), f"S-{index}", rng)
        for index in range(samples)
    ]
    return latency_summary(timings)


def measure_batches(
    engine: Engine, profiles: int, batches: int, batch_size: int, workdir: Path
) -> dict[str, Any]:
    rng = random.Random(SEED + 3)
    now = datetime.now(timezone.utc)
    seconds = 0.0
    for batch in range(batches):
        lines = [
            json.dumps(
                event_record(
                    f"B-{batch}-{index}",
                    customer_id(rng.randint(1, profiles)),
                    now - timedelta(seconds=rng.uniform(0, 86400)),
                    rng,
                )
            )
            for index in range(batch_size)
        ]
        started = time.perf_counter()
        with transaction(engine) as session:
            summary = import_lines(session, lines, bulk=True)
        seconds += time.perf_counter() - started
        if summary.by_kind["event"].created != batch_size:
            raise RuntimeError(f"batch {batch}: {summary.by_kind['event'].created} stored")
    events = batches * batch_size
    return {
        "batches": batches,
        "batch_size": batch_size,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1),
    }


def measure_history(engine: Engine, profiles: int, history: int, samples: int) -> dict[str, Any]:
    """One event for the short-history and the long-history profile, interleaved."""
    rng = random.Random(SEED + 4)
    short, long = [], []
    for index in range(samples):
        short.append(one_event(engine, customer_id(0), f"HS-{index}", rng))
        long.append(one_event(engine, customer_id(profiles + 1), f"HL-{index}", rng))
    short_summary, long_summary = latency_summary(short), latency_summary(long)
    return {
        "short_history": SHORT_HISTORY,
        "long_history": history,
        "short": short_summary,
        "long": long_summary,
        "ratio_p50": round(long_summary["p50_ms"] / short_summary["p50_ms"], 3),
    }


@contextmanager
def backend_database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "postgresql":
        with throwaway_postgres_database("cdp_bench") as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"


def bench_backend(backend: str, sizes: dict[str, int], workdir: Path) -> dict[str, Any]:
    profiles, events, history = sizes["profiles"], sizes["events"], sizes["history"]
    data = workdir / f"synthetic-{backend}.jsonl"
    print(f"[{backend}] generating {profiles:,} profiles, {events:,} events", flush=True)
    counts = write_synthetic_file(data, profiles, events, history, datetime.now(timezone.utc))
    records = counts["profiles"] + counts["events"]
    with backend_database(backend, workdir) as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            print(f"[{backend}] bulk import of {records:,} records", flush=True)
            result: dict[str, Any] = {"sizes": counts}
            result["import"] = measure_import(engine, data, records)
            data.unlink()
            if backend == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("VACUUM ANALYZE")
            print(f"[{backend}] profile context reads", flush=True)
            result["context"] = measure_context(engine, profiles, sizes["samples"])
            print(f"[{backend}] single events", flush=True)
            result["single_event"] = measure_single_events(engine, profiles, sizes["samples"])
            print(f"[{backend}] event batches", flush=True)
            result["batches"] = measure_batches(
                engine, profiles, sizes["batches"], sizes["batch_size"], workdir
            )
            print(f"[{backend}] history growth", flush=True)
            result["history"] = measure_history(engine, profiles, history, sizes["samples"] // 2)
        finally:
            engine.dispose()
    return result


def verdicts(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """(target, measured, held) for every backend measured."""
    rows = []
    for backend, result in results.items():
        checks = [
            ("profile context p95", result["context"]["p95_ms"], TARGET_CONTEXT_P95_MS, "ms", 1),
            ("one event p95", result["single_event"]["p95_ms"], TARGET_EVENT_P95_MS, "ms", 1),
            (
                "event batches",
                result["batches"]["events_per_s"],
                TARGET_BATCH_EVENTS_PER_S,
                "events/s",
                -1,
            ),
            (
                "bulk import",
                result["import"]["records_per_s"],
                TARGET_IMPORT_RECORDS_PER_S,
                "records/s",
                -1,
            ),
            ("history ratio (p50)", result["history"]["ratio_p50"], TARGET_HISTORY_RATIO, "", 1),
        ]
        for name, value, target, unit, direction in checks:
            held = value <= target if direction > 0 else value >= target
            bound = "≤" if direction > 0 else "≥"
            rows.append(
                (f"{backend}: {name} {bound} {target:,g} {unit}".rstrip(), f"{value:,g}", held)
            )
    return rows


def report(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# CDP benchmark",
        "",
        f"{meta['when']} · {meta['machine']} · commit {meta['commit']} · "
        f"`python -m tools.bench_cdp {meta['args']}`".rstrip(),
        "",
        "| backend | profiles | events | import records/s | context p50 / p95 ms "
        "| one event p50 / p95 ms | batch events/s | history 100 / long p50 ms (ratio) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        h = r["history"]
        lines.append(
            f"| {backend} | {r['sizes']['profiles']:,} | {r['sizes']['events']:,} "
            f"| {r['import']['records_per_s']:,.0f} ({r['import']['seconds']:,} s) "
            f"| {r['context']['p50_ms']} / {r['context']['p95_ms']} "
            f"| {r['single_event']['p50_ms']} / {r['single_event']['p95_ms']} "
            f"| {r['batches']['events_per_s']:,.0f} "
            f"| {h['short']['p50_ms']} / {h['long']['p50_ms']} at {h['long_history']:,} "
            f"({h['ratio_p50']}) |"
        )
    lines += ["", "| target | measured | held |", "|---|---|---|"]
    lines += [
        f"| {name} | {value} | {'yes' if held else '**no**'} |"
        for name, value, held in verdicts(results)
    ]
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    return result.stdout.strip() or "uncommitted"


def sizes_for(args: argparse.Namespace, backend: str) -> dict[str, int]:
    quick = args.quick
    if backend == "sqlite":
        profiles = args.sqlite_profiles or (2_000 if quick else 100_000)
        events = args.sqlite_events or profiles * 5
    else:
        profiles = args.profiles or (5_000 if quick else 1_000_000)
        events = args.events or (25_000 if quick else 5_000_000)
    return {
        "profiles": profiles,
        "events": events,
        "history": args.history or (10_000 if quick else 100_000),
        "samples": args.samples or (200 if quick else 2_000),
        "batches": 3 if quick else 10,
        "batch_size": 5_000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--profiles", type=int, help="PostgreSQL profiles (1,000,000)")
    parser.add_argument("--events", type=int, help="PostgreSQL events (5,000,000)")
    parser.add_argument("--sqlite-profiles", type=int, help="SQLite profiles (100,000)")
    parser.add_argument("--sqlite-events", type=int, help="SQLite events (5 per profile)")
    parser.add_argument("--history", type=int, help="events of the long-history profile")
    parser.add_argument("--samples", type=int, help="timed reads and single events (2,000)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--output", type=Path, default=RESULTS / "bench-cdp")
    args = parser.parse_args(argv)
    meta = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores (shared)",
        "commit": git_commit(),
        "args": " ".join(sys.argv[1:] if argv is None else argv),
    }
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cdp-") as workdir:
        for backend in args.backend or ("postgresql", "sqlite"):
            results[backend] = bench_backend(backend, sizes_for(args, backend), Path(workdir))
            text = write_results(results, meta, args.output)  # kept even if a later one fails
    print(text)
    missed = [name for name, _, held in verdicts(results) if not held]
    for name in missed:
        print(f"target missed: {name}", file=sys.stderr)
    return 1 if missed else 0


def write_results(results: dict[str, dict[str, Any]], meta: dict[str, Any], output: Path) -> str:
    """Write OUTPUT.json and OUTPUT.md; returns the Markdown."""
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "results": results, "verdicts": verdicts(results)}
    output.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    text = report(results, meta)
    output.with_suffix(".md").write_text(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
