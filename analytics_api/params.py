"""Query-parameter parsing for the analytics endpoints: every failure names its parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from shared.errors import BadParameter

MAX_TOP = 100
MAX_DAYS = 366
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def collection(query: Mapping[str, str]) -> str | None:
    """``collection_name``; absent or empty means all collections."""
    value = query.get("collection_name", "").strip()
    if len(value) > 128:
        raise BadParameter("collection_name", "at most 128 characters")
    return value or None


def day(query: Mapping[str, str], name: str) -> date | None:
    """An optional ``YYYY-MM-DD`` date."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not a date (YYYY-MM-DD)") from None


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An optional integer within ``[low, high]``."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not an integer") from None
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low} and {high}")
    return value


def choice(query: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    """An optional value out of ``allowed``."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        raise BadParameter(name, f"must be one of {', '.join(allowed)}")
    return raw
