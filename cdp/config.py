"""Where the CDP database lives, from the environment, with a local SQLite default."""

import os
from pathlib import Path

from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = REPO_ROOT / "var" / "cdp.sqlite3"
DATABASE_URL_ENV = "CDP_DATABASE_URL"

# psycopg 3 is the only PostgreSQL driver installed, so bare PostgreSQL URLs must name it.
_PSYCOPG_SCHEME = "postgresql+psycopg://"
_BARE_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def database_url() -> str:
    """The SQLAlchemy URL from CDP_DATABASE_URL, or the repo-local SQLite file."""
    configured = os.environ.get(DATABASE_URL_ENV, "").strip()
    if configured:
        return with_psycopg_driver(configured)
    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def with_psycopg_driver(url: str) -> str:
    """Rewrite `postgresql://` and `postgres://` URLs to use psycopg 3; leave others alone."""
    for scheme in _BARE_POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return _PSYCOPG_SCHEME + url.removeprefix(scheme)
    return url


def masked_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print or log."""
    return make_url(url).render_as_string(hide_password=True)
