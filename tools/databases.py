"""Throwaway PostgreSQL databases for tests and benchmarks.

The admin URL comes from `CDP_TEST_POSTGRES_URL` (default: the local server with trust auth);
each caller gets a database of its own, dropped afterwards even if connections are still open.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from cdp.config import masked_url, with_psycopg_driver

POSTGRES_ADMIN_URL_ENV = "CDP_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class PostgresUnavailable(RuntimeError):
    """The admin server could not be reached; the message says where and why."""


def postgres_admin_url() -> str:
    return with_psycopg_driver(os.environ.get(POSTGRES_ADMIN_URL_ENV, DEFAULT_POSTGRES_ADMIN_URL))


@contextmanager
def throwaway_postgres_database(prefix: str = "cdp_test") -> Iterator[str]:
    """The URL (psycopg 3 driver) of a new, empty database that is dropped on exit."""
    admin_url = postgres_admin_url()
    admin = create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as error:
        admin.dispose()
        raise PostgresUnavailable(
            f"PostgreSQL unreachable at {masked_url(admin_url)}: {error.orig}"
        ) from error
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def for_rasa(url: str) -> str:
    """The same database for Rasa's SQLAlchemy 1.4, whose PostgreSQL driver is psycopg2."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
