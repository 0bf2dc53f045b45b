"""One line of a guide-format log file to a validated ``LogEventIn``, or the reasons it cannot be one.

The guide's ``HybridLoggingService`` wrote ``json.dumps(item)`` per line: its §3.1
fields, which are ours, in the shapes its code tends to produce. What is mapped
(everything else is validated exactly as ``POST /v1/logs`` validates it, by the same
``ingestor.decoding.decode_items`` and created_at bounds):

- ``null`` values of top-level fields are dropped (a dumped model writes every
  optional field; ours omit them), so ``"status": null`` means the default;
- ``created_at`` without an offset (``datetime.now().isoformat()``, or ``str()`` of it
  with a space instead of ``T``) is read in ``naive_tz`` (CHATLOG_TIMEZONE unless
  ``--naive-timezone`` says otherwise: the guide named its files by ``datetime.now()``,
  local time), where ``POST /v1/logs`` reads it as UTC; a line without ``created_at``
  is rejected (the receive time an ingest would give it is not when it happened);
- ``response_time_ms``, ``token_count``, ``retrieval_time_ms`` at the top level (the
  guide's statistics read them as columns) move into ``performance``, and a timing
  written as a float (``1234.5``) is rounded to whole milliseconds;
- integer ids (``"user_id": 42``) become strings;
- with ``unknown_fields="metadata"``, fields the contract does not know are kept under
  ``metadata.imported_fields`` instead of rejecting the line.

A line without ``log_id`` gets one derived from its content (a UUID5 of the line's
JSON with sorted keys), so importing the same line again, from any file, gives the
same id and is recognised as already stored.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from ingestor.decoding import created_at_bounds, created_at_problem, decode_items
from shared.errors import ChatlogError, ValidationFailed
from shared.layout import StorageLayout
from shared.wire import LogEventIn

# Fixed forever: the derived ids of lines imported before must stay the same.
IMPORT_NAMESPACE = uuid.UUID("39fa3a3e-5cf9-4fee-a603-cec0deaebeac")
KNOWN_FIELDS = frozenset(LogEventIn.__struct_fields__)
FLAT_PERFORMANCE = ("response_time_ms", "token_count", "retrieval_time_ms")
ID_FIELDS = ("log_id", "session_id", "conversation_id", "user_id")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_FRACTION = re.compile(r"\.(\d{6})\d+")
UnknownFields = Literal["reject", "metadata"]


@dataclass(frozen=True)
class Problem:
    """Why one line was not imported: the JSON path (``$`` for the whole line) and the reason."""

    path: str
    reason: str


@dataclass(frozen=True)
class Accepted:
    """A line that is a valid event, and its log_id (given or derived)."""

    event: LogEventIn
    derived_id: bool


def derived_log_id(obj: object) -> str:
    """The stable log_id of a line without one: the same content always gives the same id."""
    return str(uuid.uuid5(IMPORT_NAMESPACE, msgspec.json.encode(obj, order="sorted").decode()))


class GuideLineReader:
    """Maps and validates guide-format lines against the contract, one at a time."""

    def __init__(self, layout: StorageLayout, retention_days: int, naive_tz: ZoneInfo,
                 unknown_fields: UnknownFields = "reject") -> None:
        self._layout = layout
        self._retention_days = retention_days
        self._naive_tz = naive_tz
        self._unknown = unknown_fields
        self._bounds = created_at_bounds(layout, retention_days)

    def refresh_bounds(self) -> None:
        """Recompute the accepted created_at range (a long import crosses midnight)."""
        self._bounds = created_at_bounds(self._layout, self._retention_days)

    def read(self, line: bytes) -> Accepted | list[Problem]:
        """The validated event of one line, or every reason it is not one."""
        try:
            obj = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return [Problem("$", f"not JSON: {exc}")]
        except RecursionError:
            return [Problem("$", "nests arrays and objects too deeply to be read")]
        if not isinstance(obj, dict):
            return [Problem("$", f"not a JSON object but {type(obj).__name__}")]
        mapped, problems = self._map(obj)
        if problems:
            return problems
        derived = "log_id" not in mapped
        if derived:
            mapped["log_id"] = derived_log_id(obj)
        oldest, latest = self._bounds

        def check(index: int, event: LogEventIn) -> dict[str, Any] | None:
            assert event.created_at is not None  # _map requires it
            return created_at_problem(index, event.created_at, latest, oldest)

        try:
            # ``check`` runs inside only when the schema fails too (to list every error); else below.
            event = decode_items(msgspec.json.encode(mapped), "application/json", LogEventIn, check)[0]
        except ValidationFailed as exc:
            return [Problem(e["path"], e["message"]) for e in exc.extra["errors"]]
        except ChatlogError as exc:
            return [Problem("$", exc.message)]
        problem = check(0, event)
        if problem is not None:
            return [Problem(problem["path"], problem["message"])]
        return Accepted(event, derived)

    def _map(self, obj: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        event = {key: value for key, value in obj.items() if value is not None}
        for name in ID_FIELDS:
            value = event.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                event[name] = str(value)
        _nest_performance(event)
        created = event.get("created_at")
        if created is None:
            return event, [Problem("$.created_at", "created_at is missing: an imported event needs its own time")]
        if isinstance(created, str):
            event["created_at"] = self._with_offset(created)
        if self._unknown == "metadata":
            extra = {key: event.pop(key) for key in [k for k in event if k not in KNOWN_FIELDS]}
            if extra:
                metadata = event.get("metadata")
                if metadata is None:
                    event["metadata"] = metadata = {}
                if isinstance(metadata, dict):
                    metadata["imported_fields"] = extra
        return event, []

    def _with_offset(self, text: str) -> str:
        """An RFC 3339 text of a datetime the guide wrote, a naive one placed in ``naive_tz``.

        Anything that does not look like a datetime is left as it is, for the contract's
        own validation to name.
        """
        if not _DATETIME.match(text):
            return text
        # Python reads at most microseconds; nanoseconds (another writer's) are cut, not refused.
        try:
            parsed = datetime.fromisoformat(_FRACTION.sub(r".\1", text.replace("z", "Z")))
        except ValueError:
            return text
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self._naive_tz)
        try:
            return parsed.isoformat()
        except (OverflowError, ValueError):
            return text


def _nest_performance(event: dict[str, Any]) -> None:
    """Top-level timings into ``performance``; float timings rounded to whole numbers."""
    flat = [name for name in FLAT_PERFORMANCE if name in event]
    performance = event.get("performance")
    if flat and (performance is None or isinstance(performance, dict)):
        performance = dict(performance or {})
        for name in flat:
            if name not in performance:
                performance[name] = event.pop(name)
        event["performance"] = performance
    if isinstance(performance, dict):
        for name, value in list(performance.items()):
            if isinstance(value, float) and math.isfinite(value) and value >= 0:
                performance[name] = round(value)
