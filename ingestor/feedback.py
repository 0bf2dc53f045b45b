"""Posted feedback to stored feedback lines: ids filled in, user id hashed, comment redacted.

Feedback has a day-file stream of its own (``feedback/YYYY-MM-DD.jsonl``, by its
``created_at`` day) rather than lines of another kind among the log events: every
reader of the log files (statistics, their rebuild, conversation assembly) keeps
reading one record type, while the lifecycle (torn-tail repair, compression,
retention, erasure, ``chatlog verify``) handles it like any stream. The group-commit
writer appends it with the log lines, so a 202 means fsynced here too, and the derived
process counts it in the same transaction as the stream's line offsets.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from ingestor.decoding import as_utc, created_at_bounds, created_at_problem
from shared.errors import ValidationFailed
from shared.layout import StorageLayout
from shared.privacy import UserHasher
from shared.wire import FeedbackIn, FeedbackRecord

_encoder = msgspec.json.Encoder()
_NEVER = datetime.min.replace(tzinfo=UTC)
# Idempotency keys share the writer's window with log_ids: a prefix keeps the two apart.
ID_PREFIX = "feedback:"


@dataclass(frozen=True, slots=True)
class EncodedFeedback:
    """A stored feedback record with its day and encoded line (``\\n``-terminated)."""

    record: FeedbackRecord
    day: date
    line: bytes

    @property
    def key(self) -> str:
        """Its idempotency key in the writer's window of recent ids."""
        return ID_PREFIX + self.record.feedback_id


class FeedbackBuilder:
    """Turns posted feedback into pseudonymous records ready to append."""

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

    def _bounds(self) -> tuple[datetime, datetime]:
        return created_at_bounds(self._layout, self._retention_days)

    def check_created_at(self, index: int, item: FeedbackIn) -> dict[str, Any] | None:
        """The 422 entry of feedback dated out of range (as for log events)."""
        if item.created_at is None:
            return None
        oldest, latest = self._bounds()
        return created_at_problem(index, item.created_at, latest, oldest)

    def build(self, items: Sequence[FeedbackIn]) -> list[EncodedFeedback]:
        """Records for every item, or ValidationFailed naming every item out of range."""
        now = datetime.now(UTC)
        oldest, latest = self._bounds()
        errors: list[dict[str, Any]] = []
        out: list[EncodedFeedback] = []
        for index, item in enumerate(items):
            given = item.created_at
            try:
                created_at = as_utc(given) if given else now
            except OverflowError:
                created_at = _NEVER
            if not oldest <= created_at <= latest:
                errors.append(created_at_problem(index, given or created_at, latest, oldest) or {})
                continue
            record = self._record(item, created_at)
            out.append(EncodedFeedback(record, self._layout.day_of(created_at), _encoder.encode(record) + b"\n"))
        if errors:
            raise ValidationFailed(errors)
        return out

    def _record(self, item: FeedbackIn, created_at: datetime) -> FeedbackRecord:
        # The raw user id stops here, as for log events.
        user_hash = self._hasher.hash(item.user_id) if item.user_id is not None else item.user_hash
        comment = item.comment
        if comment and self._redact is not None:
            comment = self._redact(comment)
        return FeedbackRecord(
            feedback_id=item.feedback_id or str(uuid.uuid4()),
            log_id=item.log_id,
            collection_name=item.collection_name,
            score=item.score,
            created_at=created_at,
            session_id=item.session_id,
            conversation_id=item.conversation_id,
            comment=comment,
            user_hash=user_hash,
        )

