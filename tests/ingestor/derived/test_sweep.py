"""The derived state's sweep: older days that grew without a notice are applied within the sweep interval.

The ingestor drops its "these days grew" notice when the pipe to the derived process is
backed up, and the follow loop only reads the woken and the recent days. These tests
write late events with the ingest path's day-file writer and send no notice at all
(which is what a dropped notice leaves): only the sweep can find them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from ingestor.derived.state import DerivedState
from ingestor.lifecycle.compression import compress_day
from shared.layout import StorageLayout, Stream
from shared.settings import Settings
from tests.support.daemon import IngestorProcess
from tests.support.derived import DerivedHarness, derived_state, totals, until
from tests.support.events import make_event

SWEEP_SECONDS = 0.2


def _at(days_ago: int) -> datetime:
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


async def _sweeps(state: DerivedState, count: int) -> None:
    """Wait until ``count`` more sweeps have run (one per follow tick at most)."""
    target = state.sweeps + count
    await until(lambda: state.sweeps >= target, seconds=count * 2 + 5)


async def test_late_events_to_old_plain_and_compressed_days_are_swept_in_once(config: Settings) -> None:
    """Unannounced late events to a plain and a compressed old day are applied once; compressed days are not re-read."""
    config = dataclasses.replace(config, derived_sweep_seconds=SWEEP_SECONDS)
    layout = StorageLayout.from_settings(config)
    rng = random.Random(11)
    plain_day, compressed_day = _at(5), _at(10)
    async with derived_state(config) as h:
        await h.post([make_event(rng, created_at=plain_day) for _ in range(3)]
                     + [make_event(rng, created_at=compressed_day) for _ in range(4)])
        await h.state.applier.flush()
        assert totals(config.data_dir) == (7, 7)
        # The lifecycle job compresses a day while the derived state runs: its recorded size
        # is the plain file's, so the sweep reads the compressed file once, and then no more.
        assert compress_day(layout, Stream.LOGS, compressed_day.date(), level=3, files=h.files) is not None
        await _sweeps(h.state, 2)
        assert h.state.applier.compressed_reads == 1
        await _sweeps(h.state, 5)
        assert h.state.applier.compressed_reads == 1

        # Late events, no notice: a new line in the plain day, a new frame in the compressed one.
        h.write([make_event(rng, created_at=plain_day + timedelta(minutes=1)) for _ in range(2)]
                + [make_event(rng, created_at=compressed_day + timedelta(minutes=1))])
        assert layout.day_files(Stream.LOGS, compressed_day.date()).zst is not None
        started = time.monotonic()
        await until(lambda: totals(config.data_dir) == (10, 10), seconds=10)
        took = time.monotonic() - started
        await h.state.applier.flush()
        reads = h.state.applier.compressed_reads
        assert reads == 2  # the new frame: one read of the compressed day
        await _sweeps(h.state, 5)
        await h.state.applier.flush()
        assert totals(config.data_dir) == (10, 10)  # exactly once, however many sweeps
        assert h.state.applier.compressed_reads == reads
    # Within the interval plus a follow tick and a commit (FOLLOW_TICK_SECONDS 1 s, COALESCE 0.2 s).
    assert took < SWEEP_SECONDS + 3, took
    # A restart finds nothing left to apply, and the compressed day's recorded size was fixed.
    async with derived_state(config) as h:
        assert h.state.applier.applied_lines == 0
        assert h.state.applier.compressed_reads == 0
    assert totals(config.data_dir) == (10, 10)


@pytest.mark.slow
async def test_the_ingestors_derived_process_sweeps_in_an_unannounced_old_day(config: Settings) -> None:
    """Through the real ingestor and its derived child: late lines written to an old day, unannounced, count once."""
    socket_path = config.ingest_socket_path
    assert socket_path is not None
    daemon = IngestorProcess(config.data_dir, socket_path, CHATLOG_DERIVED_SWEEP_SECONDS="0.5")
    rng = random.Random(12)
    try:
        daemon.start()
        async with aiohttp.ClientSession() as session:
            batch = [make_event(rng), make_event(rng, created_at=_at(6))]
            async with session.post(daemon.url + "/v1/logs", json=batch) as resp:
                assert resp.status == 202
        await until(lambda: totals(config.data_dir) == (2, 2))
        # The ingest path's writer in this process appends to the old day (under the day
        # file's lock, as a second writer would), and the ingestor is told nothing.
        harness = DerivedHarness(config, None)  # type: ignore[arg-type]
        try:
            harness.write([make_event(rng, created_at=_at(6) + timedelta(minutes=5)) for _ in range(3)])
        finally:
            harness.files.close()
        await until(lambda: totals(config.data_dir) == (5, 5), seconds=10)
        await asyncio.sleep(2.0)  # several sweeps more
        assert totals(config.data_dir) == (5, 5)
    finally:
        daemon.stop_quietly()
