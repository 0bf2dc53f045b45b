"""Whether a stored record can be applied to the derived state, checked per line before it is folded.

The day files are the source of truth and may hold lines the ingest validation never
saw (older versions, other writers, hand edits). A record the derived state cannot
hold must be set aside on its own (quarantined) rather than fail the shared commit
of every line around it. The checks mirror what applying a record computes:

- integers are bounded by ``MAX_STORED_INT`` (2^53 - 1): SQLite holds 64-bit integers
  and the statistics rows hold *sums* of these values, so a single value near 2^63
  would overflow them; 2^53 is also the largest integer every JSON reader (the
  dashboard, Grafana) reads exactly;
- floats are finite (msgspec never decodes NaN or infinity from JSON, but records
  built in other ways could carry them);
- ``created_at`` has an hour and a day in the configured time zone and microseconds
  since the epoch (an instant at the edge of the calendar overflows in ``astimezone``).

Strings need no check: the decoder accepts only valid UTF-8 without lone surrogates,
and SQLite stores NUL and any other code point as given.
"""

from __future__ import annotations

import math
from datetime import UTC
from zoneinfo import ZoneInfo

from shared.wire import LogRecord

MAX_STORED_INT = 2**53 - 1


def _int_ok(value: int | None) -> bool:
    return value is None or 0 <= value <= MAX_STORED_INT


def _float_ok(value: float | None) -> bool:
    return value is None or math.isfinite(value)


def _first_bad(ints: dict[str, int | None], floats: dict[str, float | None]) -> str:
    """The reason for the first field (by path) that fails its check."""
    for path, value in ints.items():
        if not _int_ok(value):
            return f"integer out of range [0, 2^53-1] at {path}"
    for path, number in floats.items():
        if not _float_ok(number):
            return f"non-finite number at {path}"
    raise AssertionError("no field fails")


def inadmissible(record: LogRecord, tz: ZoneInfo) -> str | None:
    """Why ``record`` cannot be applied to the derived state, or None when it can.

    Runs for every line the derived state reads: the common case is a few comparisons.
    """
    at = record.created_at
    # Zone offsets are under a day: only the first and last years can leave the calendar.
    if not 1 < at.year < 9999:
        try:
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
            at.astimezone(tz)
            at.astimezone(UTC)
        except (OverflowError, ValueError):
            return "created_at has no representable hour in the configured time zone"
    perf = record.performance
    if perf is not None and not (
        _int_ok(perf.response_time_ms) and _int_ok(perf.token_count) and _int_ok(perf.retrieval_time_ms)
    ):
        return _first_bad({
            "$.performance.response_time_ms": perf.response_time_ms,
            "$.performance.token_count": perf.token_count,
            "$.performance.retrieval_time_ms": perf.retrieval_time_ms,
        }, {})
    params = record.llm_params
    if params is not None and not (
        _int_ok(params.max_tokens) and _float_ok(params.temperature) and _float_ok(params.top_p)
    ):
        return _first_bad(
            {"$.llm_params.max_tokens": params.max_tokens},
            {"$.llm_params.temperature": params.temperature, "$.llm_params.top_p": params.top_p},
        )
    retrieval = record.retrieval_info
    if retrieval is not None:
        if not _int_ok(retrieval.retrieved_count):
            return "integer out of range [0, 2^53-1] at $.retrieval_info.retrieved_count"
        if retrieval.top_scores and not all(map(math.isfinite, retrieval.top_scores)):
            return "non-finite number at $.retrieval_info.top_scores"
    docs = record.retrieved_docs
    if docs and not all(_float_ok(doc.score) for doc in docs):
        return "non-finite number at $.retrieved_docs[].score"
    return None
