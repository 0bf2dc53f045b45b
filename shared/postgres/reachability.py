"""What to tell an operator when PostgreSQL cannot be used: where, and why, never the password."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict


def safe_url(url: str) -> str:
    """``url`` without its password: ``postgresql://user@host:port/dbname``."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an unreadable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def connection_problem(url: str, exc: BaseException) -> str:
    """One line: the server (without the password) and the server's or libpq's reason."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        reason = reason.replace(str(password), "***")
    if isinstance(exc, psycopg.OperationalError):
        return f"cannot use PostgreSQL at {safe_url(url)}: {reason}"
    return f"PostgreSQL at {safe_url(url)} refused a statement: {reason}"
