"""Where a rebuild computes its days: worker processes for a long range, a thread for a short one.

Reading, decoding and aggregating a day is CPU work that mostly holds the GIL
(msgspec, numpy on small arrays, the row tuples), so several days at once need
processes; the rebuild's own process only writes SQLite. A day's result is its
``DayRows``: the summary rows as tuples and the activity rows as codes, which are
cheap to send back.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from chat_statistics.rebuild.aggregate import DayRows, aggregate_day
from chat_statistics.rebuild.answers import answer_rows
from chat_statistics.rebuild.frames import read_columns
from chat_statistics.rebuild.quality import quality_rows
from chat_statistics.rebuild.questions import question_rows

# Fewer days than this are not worth starting processes for (the daily job does one).
POOL_MIN_DAYS = 3
_MAX_WORKERS = 8


def day_rows(path: Path, applied: int, tz: ZoneInfo, day: date, finalise: bool) -> DayRows:
    """Every statistics row of the first ``applied`` lines of a day file (what a worker computes)."""
    rows = aggregate_day(read_columns(path, applied, tz), day, finalise)
    rows.quality = quality_rows(path, applied, tz, day)
    rows.questions = question_rows(path, applied, day)
    rows.answers, rows.errors = answer_rows(path, applied, day)
    return rows


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _start() -> None:
    # A worker frees its own objects by reference counting; keeping the collector off the
    # inherited, long-lived ones (modules, caches) saved a few percent per day.
    gc.freeze()


def executor(days: int, workers: int | None = None) -> tuple[Executor, int]:
    """An executor for ``days`` days of work and how many run at once.

    ``workers`` None picks one process per CPU for ranges of ``POOL_MIN_DAYS`` or
    more; 1 means a single thread in this process.
    """
    count = min(_cpus(), days, _MAX_WORKERS) if workers is None else max(1, min(workers, days))
    if count < 2 or (workers is None and days < POOL_MIN_DAYS):
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-read"), 1
    # Forking is instant and shares the loaded modules, but it is only safe without other
    # threads (the CLI); beside them (the ingestor, tests) workers start from scratch.
    forkable = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if forkable else "spawn")
    return ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=_start), count
