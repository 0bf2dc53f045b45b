"""Improvement suggestions drawn from the statistics, each with the numbers behind it.

Interface only for now (the answer is always empty); the rules land next.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any, Literal

import msgspec

from shared.settings import Settings

Severity = Literal["high", "medium", "low"]


class Suggestion(msgspec.Struct):
    """One suggestion (CONTRACT.md "Additions" → suggestions)."""

    kind: str
    severity: Severity
    collection_name: str | None
    message: str
    evidence: dict[str, Any]


class Suggestions(msgspec.Struct):
    """The suggestions answer."""

    items: list[Suggestion] = msgspec.field(default_factory=list)


def query_suggestions(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date, settings: Settings
) -> Suggestions:
    """Every suggestion the range's data supports, most severe first."""
    return Suggestions()
