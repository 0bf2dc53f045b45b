"""``chatlog migrate-to-postgres``: one node's single-machine store (SQLite + day files) into PostgreSQL."""
