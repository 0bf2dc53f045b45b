"""Validated events to stored records: ids filled in, user id hashed, content redacted.

An ``EncodedRecord`` is a stored record with its day and encoded line: what the writer
appends, and what the derived-state process reads back from the day files.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from ingestor.decoding import as_utc, created_at_problem
from shared.errors import ValidationFailed
from shared.layout import StorageLayout
from shared.privacy import UserHasher
from shared.wire import LogEventIn, LogRecord

_encoder = msgspec.json.Encoder()
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A stored record with its day and its encoded line (``\\n``-terminated)."""

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
        now = datetime.now(UTC)
        oldest = self._layout.day_start(self._layout.today() - timedelta(days=self._retention_days))
        return created_at_problem(index, event.created_at, now + timedelta(days=1), oldest)

    def build(self, events: Sequence[LogEventIn]) -> list[EncodedRecord]:
        """Records for every event, or ValidationFailed naming every event out of range."""
        now = datetime.now(UTC)
        latest = now + timedelta(days=1)
        oldest_day = self._layout.today() - timedelta(days=self._retention_days)
        oldest = self._layout.day_start(oldest_day)
        errors: list[dict[str, Any]] = []
        out: list[EncodedRecord] = []
        day_of = self._layout.day_of
        encode = _encoder.encode
        for index, event in enumerate(events):
            given = event.created_at
            try:
                created_at = as_utc(given) if given else now
            except OverflowError:
                created_at = _NEVER  # year 1 or 9999 with an offset: the check below names it
            if not oldest <= created_at <= latest:
                errors.append(created_at_problem(index, given or created_at, latest, oldest) or {})
                continue
            record = self._record(event, created_at)
            out.append(EncodedRecord(record, day_of(created_at), encode(record) + b"\n"))
        if errors:
            raise ValidationFailed(errors)
        return out

    def _record(self, event: LogEventIn, created_at: datetime) -> LogRecord:
        # The raw user id stops here: only its keyed hash goes any further.
        user_hash = self._hasher.hash(event.user_id) if event.user_id is not None else event.user_hash
        content = event.message_content
        retrieval = event.retrieval_info
        if self._redact is not None:
            content = self._redact(content)
            if retrieval is not None and retrieval.query:
                # The retrieval query is usually the user's own words: same treatment.
                retrieval = msgspec.structs.replace(retrieval, query=self._redact(retrieval.query))
        return LogRecord(
            log_id=event.log_id or str(uuid.uuid4()),
            session_id=event.session_id,
            conversation_id=event.conversation_id or event.session_id,
            collection_name=event.collection_name,
            message_type=event.message_type,
            message_content=content,
            created_at=created_at,
            user_hash=user_hash,
            reasoning_level=event.reasoning_level,
            llm_model=event.llm_model,
            llm_params=event.llm_params,
            retrieval_info=retrieval,
            retrieved_docs=event.retrieved_docs,
            performance=event.performance,
            status=event.status,
            error=event.error,
            is_regeneration=event.is_regeneration or event.endpoint == "regenerate",
            endpoint=event.endpoint,
            metadata=event.metadata,
        )
