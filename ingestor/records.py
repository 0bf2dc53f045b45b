"""Validated events to stored records: ids filled in, user id hashed, content redacted.

An ``EncodedRecord`` is a stored record with its day and encoded line: what the writer
appends, and what the derived-state process reads back from the day files.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from ingestor.decoding import as_utc, created_at_bounds, created_at_problem
from shared.errors import ValidationFailed
from shared.layout import StorageLayout
from shared.privacy import UserHasher
from shared.wire import LogEventIn, LogRecord

_encoder = msgspec.json.Encoder()
_NEVER = datetime.min.replace(tzinfo=UTC)
# build() makes each LogRecord by position (three times cheaper than by keyword), in this order.
_RECORD_FIELDS = (
    "log_id", "session_id", "conversation_id", "collection_name", "message_type", "message_content",
    "created_at", "user_hash", "reasoning_level", "llm_model", "llm_params", "retrieval_info",
    "retrieved_docs", "performance", "status", "error", "is_regeneration", "endpoint", "metadata",
)
if LogRecord.__struct_fields__ != _RECORD_FIELDS:  # pragma: no cover - a guard for whoever edits LogRecord
    raise ImportError("LogRecord's fields changed: update RecordBuilder.build, which passes them by position")


class EncodedRecord(msgspec.Struct, frozen=True, gc=False):
    """A stored record with its day and its encoded line (``\\n``-terminated).

    A msgspec struct rather than a frozen dataclass: one is made per stored event, and
    a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) cost more than
    encoding the record. Nothing it holds refers back to it, so the cycle collector
    need not track it (``gc=False``).
    """

    record: LogRecord
    day: date
    line: bytes
    # Where the line sits in its plain day file, when it was read from one (-1: unknown).
    number: int = -1
    offset: int = -1
    length: int = 0


class RecordBuilder:
    """Turns posted events into pseudonymous, complete records ready to append."""

    def __init__(
        self,
        layout: StorageLayout,
        hasher: UserHasher,
        retention_days: int,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self._layout = layout
        self._hasher = hasher
        self._retention_days = retention_days
        self._redact = redact

    def check_created_at(self, index: int, event: LogEventIn) -> dict[str, Any] | None:
        """The 422 entry of an event dated out of range, for requests that also break the schema."""
        if event.created_at is None:
            return None
        oldest, latest = created_at_bounds(self._layout, self._retention_days)
        return created_at_problem(index, event.created_at, latest, oldest)

    def build(self, events: Sequence[LogEventIn]) -> list[EncodedRecord]:
        """Records for every event, or ValidationFailed naming every event out of range."""
        now = datetime.now(UTC)
        latest = now + timedelta(days=1)
        oldest_day = self._layout.today() - timedelta(days=self._retention_days)
        oldest = self._layout.day_start(oldest_day)
        errors: list[dict[str, Any]] = []
        out: list[EncodedRecord] = []
        # The hot loop: one pass, no calls that are not needed (this is most of an ingest's CPU).
        day_of = self._layout.day_of
        utc_days = self._layout.tz.key == "UTC"
        encode = _encoder.encode
        hash_user = self._hasher.hash
        redact = self._redact
        replace = msgspec.structs.replace
        for index, event in enumerate(events):
            given = event.created_at
            if given is None:
                created_at = now
            elif given.tzinfo is UTC:
                created_at = given
            else:
                try:
                    created_at = as_utc(given)
                except OverflowError:
                    created_at = _NEVER  # year 1 or 9999 with an offset: the check below names it
            if not oldest <= created_at <= latest:
                errors.append(created_at_problem(index, given or created_at, latest, oldest) or {})
                continue
            if errors:
                continue  # the request is refused whole: only the other errors matter now
            # The raw user id stops here: only its keyed hash goes any further.
            user_id = event.user_id
            content = event.message_content
            retrieval = event.retrieval_info
            if redact is not None:
                content = redact(content)
                if retrieval is not None and retrieval.query:
                    # The retrieval query is usually the user's own words: same treatment.
                    retrieval = replace(retrieval, query=redact(retrieval.query))
            endpoint = event.endpoint
            record = LogRecord(
                event.log_id or str(uuid.uuid4()),
                event.session_id,
                event.conversation_id or event.session_id,
                event.collection_name,
                event.message_type,
                content,
                created_at,
                hash_user(user_id) if user_id is not None else event.user_hash,
                event.reasoning_level,
                event.llm_model,
                event.llm_params,
                retrieval,
                event.retrieved_docs,
                event.performance,
                event.status,
                event.error,
                event.is_regeneration or endpoint == "regenerate",
                endpoint,
                event.metadata,
            )
            day = created_at.date() if utc_days else day_of(created_at)
            out.append(EncodedRecord(record, day, encode(record) + b"\n"))
        if errors:
            raise ValidationFailed(errors)
        return out
