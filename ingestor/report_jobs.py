"""The periodic report job: writes ``reports/<period>.html`` (``CHATLOG_REPORT_SCHEDULE``) in a child process.

It runs every hour at half past (after the daily statistics finalise at 00:15) and
once a minute after start; each run writes the last complete period's report if it
is missing (``insights.report.schedule``). The report is built in a child process
(``python -m insights.report``), so the question grouping it loads never stays in
the ingestor's memory and its CPU runs at a lower priority.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
from datetime import datetime, timedelta

from aiohttp import web
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from ingestor import keys
from ingestor.scheduler import ScheduledJob
from shared.settings import Settings

FIRST_RUN_AFTER = timedelta(minutes=1)
REPORT_MINUTE = 30
TIMEOUT_SECONDS = 1800


class ReportJobError(RuntimeError):
    """The report process failed; its message is in the job's log line."""


async def write_due_report(settings: Settings) -> str:
    """Run ``python -m insights.report`` with these settings; its one-line account."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "insights.report",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    payload = pickle.dumps(settings)
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            out, err = await proc.communicate(len(payload).to_bytes(8, "big") + payload)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise ReportJobError(f"the report process exited with {proc.returncode}: {' | '.join(tail)}")
    return out.decode(errors="replace").strip()


def report_jobs(app: web.Application) -> list[ScheduledJob]:
    """The hourly report job, or none when CHATLOG_REPORT_SCHEDULE is ``off``."""
    settings = app[keys.settings_key]
    if settings.report_schedule == "off":
        return []
    tz = settings.timezone

    async def report() -> str:
        return await write_due_report(settings)

    trigger = OrTrigger([
        DateTrigger(datetime.now(tz) + FIRST_RUN_AFTER, timezone=tz),
        CronTrigger(minute=REPORT_MINUTE, timezone=tz),
    ])
    return [ScheduledJob("report", trigger, report)]
