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
