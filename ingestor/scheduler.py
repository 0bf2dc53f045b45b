"""The ingestor's scheduler (apscheduler): runs the scheduled jobs, each logged, measured and never fatal.

A job is an async callable returning a one-line account of what it did. A job that
raises is logged and counted, and simply runs again at its next time. The jobs
themselves come from factories, one per concern (``ingestor.lifecycle.jobs``,
``ingestor.statistics_jobs``), handed to ``scheduler_context``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingestor import keys

log = logging.getLogger("chatlog.ingestor.scheduler")
# apscheduler reports every job it adds and runs at INFO; ``guarded`` logs each run itself.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ScheduledJob:
    """One recurring job: its name, its trigger and what it runs."""

    name: str
    trigger: BaseTrigger
    run: Callable[[], Awaitable[str]]
    # Frequent housekeeping (e.g. the WAL checkpoint every minute) logs at DEBUG.
    log_level: int = logging.INFO


class JobMetrics:
    """Per-job run counts, durations and last success time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "chatlog_job_runs", "Scheduled job runs by outcome", ["job", "outcome"], registry=registry
        )
        self.seconds = Histogram(
            "chatlog_job_duration_seconds", "Scheduled job duration", ["job"], registry=registry
        )
        self.last_success = Gauge(
            "chatlog_job_last_success_timestamp_seconds", "Unix time of the last successful run",
            ["job"], registry=registry,
        )


def guarded(
    job: ScheduledJob, metrics: JobMetrics, running: set[asyncio.Task[None]]
) -> Callable[[], Awaitable[None]]:
    """The job wrapped so that it logs what it did, never propagates a failure, and is
    tracked in ``running`` so that shutdown can wait for it."""

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
            task.add_done_callback(running.discard)
        started = time.perf_counter()
        try:
            account = await job.run()
        except Exception:
            metrics.runs.labels(job=job.name, outcome="failed").inc()
            log.exception("job %s failed; it will run again at its next time", job.name)
            return
        finally:
            metrics.seconds.labels(job=job.name).observe(time.perf_counter() - started)
        metrics.runs.labels(job=job.name, outcome="ok").inc()
        metrics.last_success.labels(job=job.name).set_to_current_time()
        log.log(job.log_level, "job %s: %s (%.2fs)", job.name, account, time.perf_counter() - started)

    return run


# Returns the scheduled jobs of one concern (lifecycle, statistics, ...).
JobFactory = Callable[[web.Application], list[ScheduledJob]]


def scheduled_jobs(app: web.Application, factories: Sequence[JobFactory]) -> list[ScheduledJob]:
    """Every recurring job the factories make for this ingestor."""
    jobs: list[ScheduledJob] = []
    for factory in factories:
        jobs.extend(factory(app))
    return jobs


def scheduler_context(factories: Sequence[JobFactory]) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx that runs the factories' jobs while the ingestor runs."""

    async def run_scheduler(app: web.Application) -> AsyncIterator[None]:
        metrics = JobMetrics(app[keys.metrics_key].registry)
        scheduler = AsyncIOScheduler(timezone=app[keys.settings_key].timezone)
        running: set[asyncio.Task[None]] = set()
        for job in scheduled_jobs(app, factories):
            scheduler.add_job(
                guarded(job, metrics, running), job.trigger, id=job.name, name=job.name,
                max_instances=1, coalesce=True, misfire_grace_time=3600,
            )
        scheduler.start()
        try:
            yield
        finally:
            scheduler.shutdown(wait=False)
            # A job still running (a compression in its thread, say) finishes before the
            # storage it works on is closed: cleanup contexts unwind in reverse order.
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    return run_scheduler
