"""The derived state, read-only, for the commands that only read it (``report``, ``faq``): either store."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import psycopg

from chatlog.cli import CommandError
from shared.db import connect_reader_sync
from shared.settings import Settings

_STORE_ERRORS = (sqlite3.Error, psycopg.Error)


@contextlib.contextmanager
def derived_state(settings: Settings) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the SQLite file or to PostgreSQL (``CHATLOG_DATABASE_URL``), closed after.

    Raises ``CommandError`` when there is no database yet or it cannot be read.
    """
    try:
        conn = connect_reader_sync(settings)
    except _STORE_ERRORS as exc:
        raise CommandError(f"the database cannot be read: {_first_line(exc)}") from None
    if conn is None:
        where = "in CHATLOG_DATABASE_URL (no chatlog tables)" if settings.database_url else f"at {settings.db_path}"
        raise CommandError(f"no database {where} yet: start the ingestor first")
    with contextlib.closing(conn):
        try:
            yield conn
        except _STORE_ERRORS as exc:
            raise CommandError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
