"""The derived state as the operator commands open it: SQLite or PostgreSQL, errors as one-line messages."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import psycopg

from chatlog.cli import CommandError
from shared.db import DatabaseUnreachable, connect_store_reader_sync, connect_store_sync
from shared.postgres.reachability import connection_problem
from shared.postgres.schema import SchemaTooNew
from shared.settings import Settings


@contextlib.contextmanager
def _failing_as_command_errors(settings: Settings) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise CommandError(connection_problem(settings.database_url, exc)) from None
    except DatabaseUnreachable as exc:
        raise CommandError(str(exc)) from None
    except SchemaTooNew as exc:
        raise CommandError(str(exc)) from None
    except sqlite3.Error as exc:
        raise CommandError(f"{settings.db_path}: {exc}") from None


@contextlib.contextmanager
def writing(settings: Settings) -> Iterator[sqlite3.Connection]:
    """The store's read-write connection, migrated (the caller holds the data directory's locks)."""
    with _failing_as_command_errors(settings), contextlib.closing(connect_store_sync(settings)) as conn:
        yield conn


@contextlib.contextmanager
def reading(settings: Settings) -> Iterator[sqlite3.Connection]:
    """A read-only connection; a clear error while there is no database yet."""
    with _failing_as_command_errors(settings):
        conn = connect_store_reader_sync(settings)
        if conn is None:
            raise CommandError(f"no database at {settings.db_path} yet: start the ingestor first")
        with contextlib.closing(conn):
            yield conn
