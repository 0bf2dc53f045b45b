"""``CHATLOG_REPORT_SCHEDULE``: the period due, its file name, written once, atomically, 0640, by a child process."""

from __future__ import annotations

import dataclasses
import stat
from datetime import UTC, date, datetime

import pytest

from ingestor.app import JOB_FACTORIES, create_app
from ingestor.report_jobs import ReportJobError, write_due_report
from ingestor.scheduler import scheduled_jobs
from insights.report.schedule import Period, last_complete, report_path, write_due
from shared.settings import Settings
from tests.chatlog.test_report import stored_traffic
from tests.conftest import AiohttpClient


@pytest.mark.parametrize(("today", "weekly"), [
    (date(2026, 12, 2), Period("2026-W48", date(2026, 11, 23), date(2026, 11, 29))),  # a Wednesday
    (date(2026, 11, 30), Period("2026-W48", date(2026, 11, 23), date(2026, 11, 29))),  # a Monday
    (date(2026, 11, 29), Period("2026-W47", date(2026, 11, 16), date(2026, 11, 22))),  # a Sunday: its week runs on
    (date(2027, 1, 4), Period("2026-W53", date(2026, 12, 28), date(2027, 1, 3))),  # ISO years have 52 or 53 weeks
])
def test_periods_and_their_names(today: date, weekly: Period) -> None:
    assert last_complete("weekly", today) == weekly
    day = date.fromordinal(today.toordinal() - 1)
    assert last_complete("daily", today) == Period(day.isoformat(), day, day)
    assert last_complete("off", today) is None


async def test_the_due_report_is_written_once(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    config = store_config
    await stored_traffic(await aiohttp_client(create_app(config)), config)
    daily = dataclasses.replace(config, report_schedule="daily")
    tomorrow = datetime.now(config.timezone).replace(hour=1) + (datetime(2026, 1, 2) - datetime(2026, 1, 1))
    period = last_complete("daily", tomorrow.date())
    assert period is not None
    path = report_path(daily, period)
    assert path == config.data_dir / "reports" / f"{period.name}.html"
    account = write_due(daily, tomorrow)
    assert account.startswith(f"wrote {path}") and "400 questions" in account
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    page = path.read_text()
    assert page.count("<svg") == 5 and "low-kb" in page
    path.write_text("kept")
    assert write_due(daily, tomorrow) == f"{path.name} already written" and path.read_text() == "kept"
    assert write_due(dataclasses.replace(config, report_schedule="off")).startswith("reports are off")
    long_ago = datetime(2020, 1, 2, 12, tzinfo=UTC)
    assert write_due(daily, long_ago) == "no data for 2020-01-01 (2020-01-01..2020-01-01): nothing written"
    assert not report_path(daily, Period("2020-01-01", long_ago.date(), long_ago.date())).exists()


async def test_the_scheduled_job_runs_the_report_in_a_child_process(config: Settings) -> None:
    """What the ingestor's hourly job runs; a failing child is an error naming its exit."""
    weekly = dataclasses.replace(config, report_schedule="weekly")
    assert await write_due_report(weekly) == "no database yet"
    config.db_path.parent.mkdir(parents=True, exist_ok=True)
    config.db_path.write_bytes(b"not a database")
    with pytest.raises(ReportJobError, match="exited with 1"):
        await write_due_report(weekly)


def test_the_ingestor_schedules_the_job_unless_off(config: Settings) -> None:
    for schedule, expected in (("weekly", True), ("daily", True), ("off", False)):
        app = create_app(dataclasses.replace(config, report_schedule=schedule))
        assert ("report" in [job.name for job in scheduled_jobs(app, JOB_FACTORIES)]) is expected
