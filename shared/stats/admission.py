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
from collections.abc import Iterable
from datetime import UTC
from zoneinfo import ZoneInfo

from shared.schemas import LogRecord

MAX_STORED_INT = 2**53 - 1


def _int_problem(path: str, value: int | None) -> str | None:
    if value is None or 0 <= value <= MAX_STORED_INT:
        return None
    return f"integer out of range [0, 2^53-1] at {path}"


def _float_problem(path: str, value: float | None) -> str | None:
    if value is None or math.isfinite(value):
        return None
    return f"non-finite number at {path}"


def _first(problems: Iterable[str | None]) -> str | None:
    return next((p for p in problems if p is not None), None)


def inadmissible(record: LogRecord, tz: ZoneInfo) -> str | None:
    """Why ``record`` cannot be applied to the derived state, or None when it can."""
    try:
        at = record.created_at if record.created_at.tzinfo is not None else record.created_at.replace(tzinfo=UTC)
        at.astimezone(tz)
        at.astimezone(UTC)
    except (OverflowError, ValueError):
        return "created_at has no representable hour in the configured time zone"
    perf = record.performance
    if perf is not None:
        problem = _first((
            _int_problem("$.performance.response_time_ms", perf.response_time_ms),
            _int_problem("$.performance.token_count", perf.token_count),
            _int_problem("$.performance.retrieval_time_ms", perf.retrieval_time_ms),
        ))
        if problem:
            return problem
    params = record.llm_params
    if params is not None:
        problem = _first((
            _int_problem("$.llm_params.max_tokens", params.max_tokens),
            _float_problem("$.llm_params.temperature", params.temperature),
            _float_problem("$.llm_params.top_p", params.top_p),
        ))
        if problem:
            return problem
    retrieval = record.retrieval_info
    if retrieval is not None:
        problem = _int_problem("$.retrieval_info.retrieved_count", retrieval.retrieved_count)
        if problem:
            return problem
        for i, score in enumerate(retrieval.top_scores or ()):
            problem = _float_problem(f"$.retrieval_info.top_scores[{i}]", score)
            if problem:
                return problem
    for i, doc in enumerate(record.retrieved_docs or ()):
        problem = _float_problem(f"$.retrieved_docs[{i}].score", doc.score)
        if problem:
            return problem
    return None
