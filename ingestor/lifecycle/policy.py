"""Which days are due for compression or deletion, per stream, in CHATLOG_TIMEZONE."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from shared.layout import StorageLayout, Stream
from shared.settings import Settings

# Today's and yesterday's files are still being written (events arrive late, clocks differ).
MIN_COMPRESS_AGE_DAYS = 2


class LifecycleError(RuntimeError):
    """A lifecycle run finished with failures; the message is its account."""


def compress_after_days(settings: Settings, stream: Stream) -> int:
    """CHATLOG_*_COMPRESS_AFTER_DAYS of a stream (feedback follows the logs it is about)."""
    if stream is not Stream.CONVERSATIONS:
        return settings.log_compress_after_days
    return settings.conversation_compress_after_days


def retention_days(settings: Settings, stream: Stream) -> int:
    """CHATLOG_*_RETENTION_DAYS of a stream (feedback follows the logs it is about)."""
    if stream is not Stream.CONVERSATIONS:
        return settings.log_retention_days
    return settings.conversation_retention_days


def today_of(layout: StorageLayout, now: datetime | None) -> date:
    """The current day in CHATLOG_TIMEZONE (``now`` lets tests pick the instant)."""
    return layout.today() if now is None else layout.day_of(now)


def compress_before(settings: Settings, stream: Stream, today: date) -> date:
    """Days strictly before this one are compressed: older than N days, never today or yesterday."""
    age = max(compress_after_days(settings, stream), MIN_COMPRESS_AGE_DAYS - 1)
    return today - timedelta(days=age)


def retain_from(settings: Settings, stream: Stream, today: date) -> date:
    """The oldest day kept; days strictly before it are deleted.

    The same boundary as the ingestor's ``RecordBuilder``, which refuses events older than
    the log retention, so no event is accepted into a day that retention removes.
    """
    return today - timedelta(days=retention_days(settings, stream))
