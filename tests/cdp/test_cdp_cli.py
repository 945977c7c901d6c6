"""The command line, run as users run it: `python -m cdp ...` in a subprocess."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

import cdp
from cdp.db import head_revision
from cdp.identity_token import IDENTITY_SECRET_ENV, verify_token

REPO_ROOT = Path(cdp.__file__).resolve().parent.parent
SECRET = "cli-test-secret-that-is-long-enough!!"
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(cdp_url: str) -> Cli:
    """Run `python -m cdp ARGS` against the test database; extra env via keyword."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            key: value for key, value in os.environ.items() if key != IDENTITY_SECRET_ENV
        }
        environment |= {"CDP_DATABASE_URL": cdp_url, **env}
        return subprocess.run(
            [sys.executable, "-m", "cdp", *args],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_init_is_idempotent(cli: Cli) -> None:
    first = cli("init")
    assert first.returncode == 0, first.stderr
    assert f"schema revision {head_revision()}" in first.stdout
    assert cli("init").returncode == 0


def test_init_masks_the_password_of_the_url(tmp_path: Path) -> None:
    environment = dict(os.environ, CDP_DATABASE_URL="postgresql://cdp:hunter2@127.0.0.1:1/cdp")
    result = subprocess.run(
        [sys.executable, "-m", "cdp", "init"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "hunter2" not in result.stdout + result.stderr
    assert "postgresql+psycopg://cdp:***@127.0.0.1:1/cdp" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_commands_need_an_initialised_database(cli: Cli) -> None:
    result = cli("profile", "show", "C-1001")
    assert result.returncode == 1
    assert "run `python -m cdp init`" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_then_show_profile_as_json(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "customers.jsonl"
    data.write_text(
        json.dumps(
            {
                "kind": "profile",
                "customer_id": "C-7",
                "first_name": "Ana",
                "phone": "+1 555 123 0007",
                "email": "ana7@example.com",
            }
        )
        + "\n"
        + json.dumps(
            {
                "kind": "order",
                "customer_id": "C-7",
                "order_id": "O-7",
                "placed_at": "2026-10-02T18:30:00Z",
                "status": "delivered",
                "channel": "web",
                "currency": "USD",
                "items": [{"sku": "SKU-1", "name": "Beans", "qty": 2, "unit_price": 3.5}],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    assert cli("init").returncode == 0
    imported = cli("import", str(data))
    assert imported.returncode == 0, imported.stderr
    assert "2 records" in imported.stdout

    shown = cli("profile", "show", "phone:+15551230007", "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["customer_id"] == "C-7"
    assert document["orders"]["last_order_id"] == "O-7"
    assert document["orders"]["last_order_total"] == "7.00"

    human = cli("profile", "show", "C-7")
    assert human.returncode == 0
    assert human.stdout.startswith("C-7  Ana\n")
    assert "+15551230007" in human.stdout


def test_import_error_names_file_line_and_field_and_writes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(
        '{"kind": "profile", "customer_id": "C-1"}\n'
        '{"kind": "order", "customer_id": "C-1", "order_id": "O-1", "placed_at": '
        '"2026-10-02T18:30:00Z", "status": "delivered", "channel": "web", "currency": "USD", '
        '"items": [{"sku": "S", "name": "N", "qty": -1, "unit_price": 1}]}\n',
        encoding="utf-8",
    )
    assert cli("init").returncode == 0
    result = cli("import", str(data))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {data}:2: field items[1].qty: must be a positive whole number, got -1"
    )
    assert cli("profile", "show", "C-1").returncode == 1


def test_import_of_missing_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").returncode == 0
    result = cli("import", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 1
    assert result.stderr.strip().endswith("No such file or directory")
    assert "Traceback" not in result.stderr


def test_profile_show_unknown_ref(cli: Cli) -> None:
    assert cli("init").returncode == 0
    missing = cli("profile", "show", "email:nobody@example.com")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "error: no profile matches 'email:nobody@example.com'",
    )
    bad_type = cli("profile", "show", "fax:123")
    assert bad_type.returncode == 1
    assert "unknown identity type 'fax'" in bad_type.stderr


def test_seed_loads_demo_data_once(cli: Cli) -> None:
    first = cli("seed")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    second = cli("seed")
    assert second.returncode == 0, second.stderr
    assert "left the data alone" in second.stdout
    ana = json.loads(cli("profile", "show", "phone:+15551230001", "--json").stdout)
    assert (ana["customer_id"], ana["first_name"], ana["last_name"]) == ("C-1001", "Ana", "Diaz")


def test_token_mints_a_verifiable_token_for_known_customers(cli: Cli) -> None:
    assert cli("seed").returncode == 0
    result = cli("token", "C-1001", "--ttl", "120", **{IDENTITY_SECRET_ENV: SECRET})
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert verify_token(token, SECRET) == "C-1001"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120

    unknown = cli("token", "C-9999", **{IDENTITY_SECRET_ENV: SECRET})
    assert unknown.returncode == 1
    assert "--allow-unknown" in unknown.stderr
    allowed = cli("token", "C-9999", "--allow-unknown", **{IDENTITY_SECRET_ENV: SECRET})
    assert allowed.returncode == 0
    assert verify_token(allowed.stdout.strip(), SECRET) == "C-9999"


def test_token_needs_a_secret_and_a_sane_ttl(cli: Cli) -> None:
    missing = cli("token", "C-1001", "--allow-unknown")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: {IDENTITY_SECRET_ENV} is not set; export a secret to mint tokens"
    )
    bad_ttl = cli("token", "C-1001", "--ttl", "0", **{IDENTITY_SECRET_ENV: SECRET})
    assert bad_ttl.returncode == 2
    assert "must be a positive whole number" in bad_ttl.stderr


def test_profile_show_json_has_attributes_with_provenance_and_computed(cli: Cli) -> None:
    assert cli("seed").returncode == 0
    shown = cli("profile", "show", "C-1001", "--json")
    assert shown.returncode == 0, shown.stderr
    ana = json.loads(shown.stdout)
    assert ana["orders"]["count"] == 3  # the original keys are still there
    assert ana["timezone"] == "America/Chicago"
    assert ana["custom"]["membership_tier"] == "premium"
    assert ana["custom"]["loyalty_tier"] == "gold"
    tier = ana["custom_attributes"]["membership_tier"]
    assert (tier["value"], tier["source"], tier["verified"]) == ("premium", "import", True)
    assert ana["standard_attributes"]["first_name"]["verified"] is True
    assert ana["computed"]["favorite_product"] == "Northwind House Blend coffee, 1 kg"
    assert ana["computed"]["order_count"] == 3
    assert ana["computed_stale"] == []
    human = cli("profile", "show", "C-1001")
    assert "favorite_product=" in human.stdout


def test_recompute_one_or_all_profiles(cli: Cli) -> None:
    assert cli("seed").returncode == 0
    one = cli("recompute", "phone:+15551230001")
    assert (one.returncode, one.stdout.strip()) == (0, "recomputed C-1001")
    every = cli("recompute")
    assert (every.returncode, every.stdout.strip()) == (0, "recomputed 6 profiles")
    missing = cli("recompute", "C-404")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no profile matches 'C-404'")


def test_attributes_check_refuses_a_type_change_in_one_line(cli: Cli, tmp_path: Path) -> None:
    assert cli("seed").returncode == 0
    ok = cli("attributes", "check")
    assert ok.returncode == 0, ok.stderr
    assert "definitions agree with the stored data" in ok.stdout
    changed = tmp_path / "custom.yml"
    changed.write_text(
        (REPO_ROOT / "cdp" / "definitions" / "custom_attributes.yml")
        .read_text(encoding="utf-8")
        .replace("  store_card_holder:\n    type: boolean", "  store_card_holder:\n    type: text"),
        encoding="utf-8",
    )
    refused = cli("attributes", "check", CDP_CUSTOM_ATTRIBUTES=str(changed))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: attribute store_card_holder: type cannot change from boolean to text "
        "once values are stored"
    )
    cyclic = tmp_path / "computed.yml"
    cyclic.write_text("version: 1\nattributes:\n  a: {formula: 'a + 1'}\n", encoding="utf-8")
    bad = cli("attributes", "check", CDP_COMPUTED_ATTRIBUTES=str(cyclic))
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"error: {cyclic}: a: cycle between definitions: a -> a"
