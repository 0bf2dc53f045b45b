"""Query-parameter parsing for the analytics endpoints: every failure names its parameter.

Parsing is strict so that what a client meant is never guessed: integers are ASCII
digits only (Python's ``int()`` would also take ``"  5"`` or ``"५"``), and a parameter
given twice is refused rather than silently reduced to its first value.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from multidict import MultiMapping

from shared.errors import BadParameter

Query = MultiMapping[str]

MAX_TOP = 100
MAX_DAYS = 366
# Longest inclusive date range a summary (or a Grafana query) may cover: about ten years.
MAX_RANGE_DAYS = 3660
# Dates outside this window are refused: day arithmetic near date.min/date.max and
# offsets of up to 14 hours must never overflow.
MIN_DAY = date(1970, 1, 1)
MAX_DAY = date(9999, 12, 30)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)


def single(query: Query, name: str) -> str | None:
    """The one value of ``name``, or None when absent; given twice is a BadParameter."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(name, "given more than once; give it once")
    return values[0] if values else None


def text(query: Query, name: str, max_chars: int = 128) -> str | None:
    """An optional string of at most ``max_chars`` characters; empty means absent."""
    value = single(query, name)
    if not value:
        return None
    if len(value) > max_chars:
        raise BadParameter(name, f"at most {max_chars} characters")
    return value


def collection(query: Query) -> str | None:
    """``collection_name``; absent or empty means all collections."""
    value = (single(query, "collection_name") or "").strip()
    if len(value) > 128:
        raise BadParameter("collection_name", "at most 128 characters")
    return value or None


def day(query: Query, name: str) -> date | None:
    """An optional ``YYYY-MM-DD`` date between ``MIN_DAY`` and ``MAX_DAY``."""
    raw = single(query, name)
    if raw is None or raw == "":
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if not MIN_DAY <= value <= MAX_DAY:
        raise BadParameter(name, f"must be between {MIN_DAY} and {MAX_DAY}")
    return value


def date_range(first: date, last: date) -> None:
    """Refuse an inverted range or one longer than ``MAX_RANGE_DAYS``."""
    if first > last:
        raise BadParameter("date_from", f"{first} is after date_to {last}")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise BadParameter("date_from", f"the range may cover at most {MAX_RANGE_DAYS} days")


def day_range(query: Query, today: date, default_days: int) -> tuple[date, date]:
    """``date_from``/``date_to``: by default the ``default_days`` ending with ``date_to`` (today)."""
    last = day(query, "date_to") or today
    first = day(query, "date_from") or last - timedelta(days=default_days - 1)
    date_range(first, last)
    return first, last


def integer(query: Query, name: str, default: int, low: int, high: int) -> int:
    """An optional integer of ASCII digits within ``[low, high]``."""
    raw = single(query, name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw):
        if raw.isascii() and raw.isdigit():
            raise BadParameter(name, f"must be between {low} and {high}")
        raise BadParameter(name, f"{raw[:40]!r} is not an integer (ASCII digits only)")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low} and {high}")
    return value


def choice(query: Query, name: str, default: str, allowed: tuple[str, ...]) -> str:
    """An optional value out of ``allowed``."""
    raw = single(query, name)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        raise BadParameter(name, f"must be one of {', '.join(allowed)}")
    return raw


def boolean(query: Query, name: str) -> bool | None:
    """An optional ``true``/``false`` (also ``1``/``0``, ``yes``/``no``)."""
    raw = single(query, name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise BadParameter(name, "must be true or false")
