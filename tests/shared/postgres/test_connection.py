"""The sqlite3-shaped PostgreSQL connection: what it keeps of the operator's URL."""

from __future__ import annotations

import contextlib

from shared.postgres.connection import PostgresConnection


def test_options_in_the_url_are_kept_beside_the_readers_own(postgres_url: str) -> None:
    """An operator's ``?options=-c ...`` (a statement timeout, say) survives the read-only session's own."""
    url = postgres_url + "?options=-c%20statement_timeout%3D4321"
    with contextlib.closing(PostgresConnection(url, read_only=True)) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)


def test_the_store_names_the_database_it_reads(postgres_url: str, postgres_server: object) -> None:
    """``store_name`` (the FAQ cache's key) names the database, never the user or password; two differ."""
    from shared.db import store_name
    from tests.support.postgres import PostgresServer

    assert isinstance(postgres_server, PostgresServer)
    other = postgres_server.create_database()
    with contextlib.closing(PostgresConnection(postgres_url, read_only=True)) as one, \
            contextlib.closing(PostgresConnection(other, read_only=True)) as two:
        (name,) = one.execute("SELECT current_database()").fetchone()
        assert store_name(one).endswith("/" + name) and "chatlog@" not in store_name(one)
        assert store_name(one) != store_name(two)
