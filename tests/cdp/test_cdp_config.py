"""Database URL selection and masking."""

from pathlib import Path

import pytest

import cdp
from cdp import config


def test_default_is_sqlite_file_under_repo_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.DATABASE_URL_ENV, raising=False)
    repo_root = Path(cdp.__file__).resolve().parent.parent
    assert config.database_url() == f"sqlite:///{repo_root / 'var' / 'cdp.sqlite3'}"
    assert (repo_root / "var").is_dir()


def test_default_creates_missing_var_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(config.DATABASE_URL_ENV, raising=False)
    target = tmp_path / "var" / "cdp.sqlite3"
    monkeypatch.setattr(config, "DEFAULT_SQLITE_PATH", target)
    assert config.database_url() == f"sqlite:///{target}"
    assert target.parent.is_dir()


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("postgresql://u:p@db:5432/cdp", "postgresql+psycopg://u:p@db:5432/cdp"),
        ("postgres://u@db/cdp", "postgresql+psycopg://u@db/cdp"),
        ("postgresql+psycopg://u@db/cdp", "postgresql+psycopg://u@db/cdp"),
        ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
        ("  sqlite:///rel.db  ", "sqlite:///rel.db"),
    ],
)
def test_env_url_is_used_with_psycopg_for_postgres(
    monkeypatch: pytest.MonkeyPatch, configured: str, expected: str
) -> None:
    monkeypatch.setenv(config.DATABASE_URL_ENV, configured)
    assert config.database_url() == expected


def test_masked_url_hides_password() -> None:
    masked = config.masked_url("postgresql+psycopg://cdp:s3cret@db:5432/cdp")
    assert "s3cret" not in masked
    assert masked == "postgresql+psycopg://cdp:***@db:5432/cdp"
