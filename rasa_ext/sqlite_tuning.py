"""SQLite settings for the tracker store of the one-machine setup.

Rasa opens SQLite with its defaults: a rollback journal and a full sync of the disk at every
commit, about a fifth of a turn here (each turn commits its events once). In write-ahead-log
mode with `synchronous=NORMAL`, a commit survives the process crashing and is only at risk if
the machine loses power before the next checkpoint; readers never wait for the writer. (The CDP,
which holds orders, keeps SQLite's full sync; see cdp/db.py.) PostgreSQL is not affected.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def tune_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def tune_sqlite_engines() -> None:
    """Apply the settings to every SQLite connection the Rasa process opens from now on."""
    if not event.contains(Engine, "connect", tune_sqlite_connection):
        event.listen(Engine, "connect", tune_sqlite_connection)
