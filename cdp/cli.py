"""Command line for operators and developers: `python -m cdp COMMAND`.

Every command uses CDP_DATABASE_URL (default: var/cdp.sqlite3). User errors print one
line to stderr and exit 1; no tracebacks.
"""

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from cdp.api.app import API_TOKEN_ENV, api_token, create_app
from cdp.attributes.definitions import custom_definitions_path, load_custom_definitions
from cdp.attributes.service import check_definitions_against_data
from cdp.clock import isoformat_z, utcnow
from cdp.computed.definitions import computed_definitions_path, load_computed_definitions
from cdp.computed.service import recompute_profile
from cdp.config import database_url, masked_url
from cdp.db import current_revision, head_revision, make_engine, migrate, transaction
from cdp.errors import CdpError, ImportRecordError, InvalidIdentifier, InvalidValue
from cdp.identities.service import normalise
from cdp.identity_token import DEFAULT_TTL_SECONDS, IDENTITY_SECRET_ENV, identity_secret, mint_token
from cdp.importer import ImportSummary, import_lines
from cdp.merges.service import unmerge
from cdp.privacy.audit import record_audit
from cdp.privacy.keys import ERASURE_KEY_ENV
from cdp.privacy.models import AuditAction
from cdp.privacy.service import erase_person, export_person
from cdp.profiles.context import context_document, profile_context
from cdp.profiles.models import Profile
from cdp.profiles.service import get_profile, normalise_customer_id, profile_document, resolve_ref
from cdp.progress import ProgressBar, lines_with_progress
from cdp.seed import SEED_FILE, dated_lines
from cdp.verification.senders import outbox_messages

RECOMPUTE_BATCH = 500


class CommandFailed(Exception):
    """A command could not do its job; the message is the one line the user sees."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.command(args)
    except (CommandFailed, CdpError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OperationalError as error:
        reason = " ".join(str(error.orig).split())
        print(
            f"error: cannot use the database at {masked_url(database_url())}: {reason}",
            file=sys.stderr,
        )
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cdp",
        description="Customer data platform. The database comes from CDP_DATABASE_URL.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create or upgrade the database schema")
    init.set_defaults(command=run_init)

    load = commands.add_parser("import", help="import a JSON Lines file, all or nothing")
    load.add_argument("file", type=Path, metavar="FILE.jsonl")
    load.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import the valid lines, report the others on stderr, exit 1 if any was skipped",
    )
    load.add_argument(
        "--bulk",
        action="store_true",
        help="write new profiles and events in chunks (same result, for large files)",
    )
    load.set_defaults(command=run_import)

    profile = commands.add_parser("profile", help="look at profiles")
    profile_commands = profile.add_subparsers(required=True, metavar="ACTION")
    show = profile_commands.add_parser("show", help="show one profile")
    show.add_argument("ref", metavar="REF", help="customer id, or type:value like phone:+1555…")
    show.add_argument("--json", action="store_true", help="print the profile document as JSON")
    show.set_defaults(command=run_profile_show)

    recompute = commands.add_parser(
        "recompute", help="rebuild computed attribute state from orders and events"
    )
    recompute.add_argument("ref", nargs="?", metavar="REF", help="one profile (default: all)")
    recompute.set_defaults(command=run_recompute)

    attributes = commands.add_parser("attributes", help="custom and computed definitions")
    attribute_commands = attributes.add_subparsers(required=True, metavar="ACTION")
    check = attribute_commands.add_parser(
        "check", help="load both definition files and check them against the stored data"
    )
    check.set_defaults(command=run_attributes_check)

    export = commands.add_parser("export", help="everything about a person as JSON (audited)")
    export.add_argument("ref", metavar="REF", help="customer id, or type:value")
    export.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    export.set_defaults(command=run_export)

    erase = commands.add_parser("erase", help=f"erase a person for good ({ERASURE_KEY_ENV})")
    erase.add_argument("ref", metavar="REF", help="customer id, or type:value")
    erase.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the log)")
    erase.set_defaults(command=run_erase)

    undo = commands.add_parser("unmerge", help="undo a profile merge")
    undo.add_argument("merge_id", type=_positive_int_argument, metavar="MERGE_ID")
    undo.set_defaults(command=run_unmerge)

    serve = commands.add_parser("serve", help=f"serve the HTTP API ({API_TOKEN_ENV})")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_positive_int_argument, default=8085, metavar="PORT")
    serve.set_defaults(command=run_serve)

    seed = commands.add_parser("seed", help="load the demo customers into an empty database")
    seed.set_defaults(command=run_seed)

    token = commands.add_parser("token", help=f"mint a dev identity token ({IDENTITY_SECRET_ENV})")
    token.add_argument("customer_id", type=_customer_id_argument, metavar="CUSTOMER_ID")
    token.add_argument(
        "--ttl",
        type=_positive_int_argument,
        default=DEFAULT_TTL_SECONDS,
        metavar="SECONDS",
        help=f"lifetime in seconds (default {DEFAULT_TTL_SECONDS})",
    )
    token.add_argument(
        "--allow-unknown",
        action="store_true",
        help="mint even if no profile has this customer id",
    )
    token.set_defaults(command=run_token)

    # Verification (cdp/verification): the development outbox of one-time codes.
    outbox = commands.add_parser("outbox", help="messages the development code sender wrote")
    outbox.add_argument("--to", metavar="VALUE", help="only those to this phone or email")
    outbox.add_argument("--json", action="store_true", help="one JSON object per line")
    outbox.set_defaults(command=run_outbox)
    return parser


def run_init(_args: argparse.Namespace) -> None:
    with _database(migrate_first=True) as engine:
        revision = current_revision(engine)
    print(f"CDP database ready at {masked_url(database_url())} (schema revision {revision})")


def run_import(args: argparse.Namespace) -> None:
    path: Path = args.file
    started = time.monotonic()
    with _database(migrate_first=False) as engine:
        summary = _import(
            engine,
            path,
            skip_invalid=args.skip_invalid,
            bulk=args.bulk,
            progress=sys.stderr.isatty(),
        )
    seconds = time.monotonic() - started
    for error in summary.skipped:
        print(
            f"skipped {path}:{error.line_no}: field {error.field}: {error.reason}", file=sys.stderr
        )
    print(_format_summary(path, summary, seconds))
    if summary.skipped:
        raise CommandFailed(f"{len(summary.skipped)} invalid lines of {path} were skipped")


def run_profile_show(args: argparse.Namespace) -> None:
    with _database(migrate_first=False) as engine, transaction(engine) as session:
        profile = resolve_ref(session, args.ref)
        if profile is None:
            raise CommandFailed(f"no profile matches {args.ref!r}")
        document = profile_document(session, profile)
        context = profile_context(session, profile.customer_id)
        if context is not None:
            document |= context_document(context)
        record_audit(
            session,
            os_user(),
            AuditAction.READ,
            profile.customer_id,
            "cli profile show",
            sorted(document),
        )
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(_describe(document))


def run_recompute(args: argparse.Namespace) -> None:
    with _database(migrate_first=False) as engine:
        with transaction(engine) as session:
            if args.ref is not None:
                profile = resolve_ref(session, args.ref)
                if profile is None:
                    raise CommandFailed(f"no profile matches {args.ref!r}")
                recompute_profile(session, profile.customer_id)
                print(f"recomputed {profile.customer_id}")
                return
            customer_ids = list(session.scalars(select(Profile.customer_id)))
        # Everyone: short transactions of a few hundred profiles, not one huge one.
        for start in range(0, len(customer_ids), RECOMPUTE_BATCH):
            with transaction(engine) as session:
                for customer_id in customer_ids[start : start + RECOMPUTE_BATCH]:
                    recompute_profile(session, customer_id)
    print(f"recomputed {len(customer_ids)} profiles")


def run_attributes_check(_args: argparse.Namespace) -> None:
    custom = load_custom_definitions()
    computed = load_computed_definitions()
    with _database(migrate_first=False) as engine, transaction(engine) as session:
        check_definitions_against_data(session, custom)
    print(
        f"{custom_definitions_path()}: version {custom.version}, "
        f"{len(custom.attributes)} custom attributes\n"
        f"{computed_definitions_path()}: version {computed.version}, "
        f"{len(computed.names)} computed attributes\n"
        "definitions agree with the stored data"
    )


def run_export(args: argparse.Namespace) -> None:
    with _database(migrate_first=False) as engine, transaction(engine) as session:
        document = export_person(session, args.ref)
        record_audit(
            session, os_user(), AuditAction.EXPORT, document["customer_id"], "cli export", ["*"]
        )
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if args.output is None:
        print(text)
        return
    try:
        args.output.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise CommandFailed(f"cannot write {args.output}: {error.strerror}") from None
    print(f"exported {document['customer_id']} to {args.output}")


def run_erase(args: argparse.Namespace) -> None:
    with _database(migrate_first=False) as engine, transaction(engine) as session:
        erasure = erase_person(session, args.ref, os_user(), args.reason)
    print(
        f"erased {args.ref}: {erasure.profiles} profiles, "
        f"{erasure.identifiers} identifiers kept only as keyed hashes"
    )


def run_unmerge(args: argparse.Namespace) -> None:
    with _database(migrate_first=False) as engine, transaction(engine) as session:
        record = unmerge(session, args.merge_id, os_user())
    print(
        f"undid merge {record.id}: {record.merged_id} is separate from {record.survivor_id} again"
    )


def run_serve(args: argparse.Namespace) -> None:
    token = api_token()
    with _database(migrate_first=False) as engine:
        print(
            f"CDP API on http://{args.host}:{args.port} ({masked_url(database_url())})", flush=True
        )
        create_app(engine, token).run(host=args.host, port=args.port, access_log=False, motd=False)


def os_user() -> str:
    """Who runs the command, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def run_seed(_args: argparse.Namespace) -> None:
    with _database(migrate_first=True) as engine:
        with transaction(engine) as session:
            profiles = session.scalar(select(func.count()).select_from(Profile))
        if profiles:
            print(f"the database already has {profiles} profiles; left the data alone")
            return
        summary = _import(engine, SEED_FILE, today=utcnow().date())
    print(_format_summary(SEED_FILE, summary))


def run_token(args: argparse.Namespace) -> None:
    secret = identity_secret()
    if secret is None:
        raise CommandFailed(f"{IDENTITY_SECRET_ENV} is not set; export a secret to mint tokens")
    if not args.allow_unknown:
        with _database(migrate_first=False) as engine, transaction(engine) as session:
            if get_profile(session, args.customer_id) is None:
                raise CommandFailed(
                    f"unknown customer {args.customer_id}; "
                    "pass --allow-unknown to mint a token anyway"
                )
    print(mint_token(args.customer_id, secret, args.ttl))


def run_outbox(args: argparse.Namespace) -> None:
    recipient = _outbox_recipient(args.to) if args.to is not None else None
    with _database(migrate_first=False) as engine, transaction(engine) as session:
        messages = outbox_messages(session, recipient)
    for message in messages:
        if args.json:
            row = {
                "id": message.id,
                "at": isoformat_z(message.created_at),
                "type": message.target_type.value,
                "to": message.recipient,
                "body": message.body,
            }
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{isoformat_z(message.created_at)} to {message.recipient}: {message.body}")
    if not messages and not args.json:
        print("the outbox is empty" + (f" for {recipient}" if recipient else ""))


def _outbox_recipient(value: str) -> str:
    """The normalised phone or email, so `--to "+1 555 123 0001"` finds +15551230001."""
    kind = "email" if "@" in value else "phone"
    try:
        return normalise(kind, value)
    except InvalidIdentifier as error:
        raise CommandFailed(f"--to: {error}") from None


@contextmanager
def _database(*, migrate_first: bool) -> Iterator[Engine]:
    """An engine on the configured database, migrated first or checked to be current."""
    url = database_url()
    engine = make_engine(url)
    try:
        if migrate_first:
            migrate(engine)
        else:
            _require_current_schema(engine, url)
        yield engine
    finally:
        engine.dispose()


def _require_current_schema(engine: Engine, url: str) -> None:
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    state = "has no CDP schema" if current is None else f"is at schema revision {current}"
    raise CommandFailed(
        f"the database at {masked_url(url)} {state}, this code needs {head}; "
        "run `python -m cdp init`"
    )


def _import(
    engine: Engine,
    path: Path,
    *,
    skip_invalid: bool = False,
    bulk: bool = False,
    progress: bool = False,
    today: date | None = None,
) -> ImportSummary:
    """Import in one transaction; errors become the FILE:LINE: field FIELD: REASON line.

    progress: draw a bar on stderr (only when it is a terminal). today: the demo file's
    dates moved to this day (`cdp.seed.dated_lines`)."""
    try:
        with transaction(engine) as session, path.open("rb") as file:
            lines = file if today is None else dated_lines(file, today)
            if not progress:
                return import_lines(session, lines, skip_invalid=skip_invalid, bulk=bulk)
            bar = ProgressBar(path.stat().st_size, sys.stderr)
            try:
                return import_lines(
                    session,
                    lines_with_progress(file, bar),
                    skip_invalid=skip_invalid,
                    bulk=bulk,
                )
            finally:
                bar.close()
    except ImportRecordError as error:
        raise CommandFailed(
            f"{path}:{error.line_no}: field {error.field}: {error.reason}"
        ) from None
    except OSError as error:
        raise CommandFailed(f"cannot read {path}: {error.strerror}") from None


def _format_summary(path: Path, summary: ImportSummary, seconds: float | None = None) -> str:
    lines = [f"imported {path}: {summary.records} records"]
    for kind, counts in summary.by_kind.items():
        lines.append(
            f"  {kind:<9} {counts.read:>5} read {counts.created:>5} created "
            f"{counts.updated:>5} updated {counts.unchanged:>5} unchanged"
        )
    if seconds is not None:
        rate = summary.read / seconds if seconds > 0 else 0.0
        lines.append(
            f"read {summary.read}, written {summary.written}, skipped {len(summary.skipped)} "
            f"in {seconds:.2f} s ({rate:,.0f} records/s)"
        )
    if summary.skipped:
        shown = ", ".join(str(error.line_no) for error in summary.skipped[:20])
        more = " …" if len(summary.skipped) > 20 else ""
        lines.append(f"skipped lines: {shown}{more} (line, field and reason on stderr)")
    return "\n".join(lines)


def _describe(document: dict[str, Any]) -> str:
    """A short human-readable view of a profile document."""
    name = " ".join(part for part in (document["first_name"], document["last_name"]) if part)
    address = document["address"]
    custom = document["custom"]
    rows = [
        ("email", document["email"]),
        ("phone", document["phone"]),
        ("language", document["language"]),
        ("address", ", ".join(part for part in address.values() if part) if address else None),
        ("identities", "; ".join(_describe_identity(item) for item in document["identities"])),
        ("orders", _describe_orders(document["orders"])),
        ("custom", json.dumps(custom, ensure_ascii=False) if custom else None),
        ("computed", _describe_computed(document.get("computed", {}))),
    ]
    header = f"{document['customer_id']}  {name}".rstrip()
    return "\n".join([header] + [f"  {label:<11}{value}" for label, value in rows if value])


def _describe_computed(computed: dict[str, Any]) -> str:
    shown = []
    for name, value in computed.items():
        if isinstance(value, dict):
            value = value["value"]
        if value not in (None, [], 0):
            shown.append(f"{name}={json.dumps(value, ensure_ascii=False)}")
    return "; ".join(shown)


def _describe_identity(identity: dict[str, Any]) -> str:
    flags = identity["source"] + (", verified" if identity["verified"] else "")
    return f"{identity['type']} {identity['value']} ({flags})"


def _describe_orders(orders: dict[str, Any]) -> str:
    if not orders["last_order_id"]:
        return str(orders["count"])
    return (
        f"{orders['count']}, last {orders['last_order_id']} placed {orders['last_order_placed_at']}"
        f" ({orders['last_order_status']}, {orders['last_order_total']}"
        f" {orders['last_order_currency']})"
    )


def _customer_id_argument(text: str) -> str:
    try:
        return normalise_customer_id(text)
    except InvalidValue as error:
        raise argparse.ArgumentTypeError(error.reason) from None


def _positive_int_argument(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return number
