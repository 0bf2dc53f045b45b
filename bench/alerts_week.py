"""False alerts on a realistic, healthy week: how many alerts fire where none should.

Generates 8 days of healthy traffic for three collections (working-day curves with a
lunch dip, quiet nights, weekends at 40%, Poisson arrivals, error, latency and
low-score rates that wander hour to hour; tests/support/traffic.py), applies it through
the real derived state into SQLite, then evaluates the rules with the default settings
over the 8th day as the ingestor would, every ``--step`` minutes (the 7 days before it
are the baseline). Nothing in the data is an incident, so every alert is a false one.

    python -m bench.alerts_week [--step 5] [--seed 1] [--peak 3.0] [--min-answers 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingestor.derived.state import DerivedState
from shared.layout import StorageLayout
from shared.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.derived import DerivedHarness
from tests.support.traffic import realistic

COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb")


async def run(step: int, seed: int, peak: float, min_answers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.for_data_dir(Path(tmp), ingest_socket="", user_hash_secret=TEST_SECRET,
                                         alert_eval_seconds=3600, alert_min_answers=min_answers)
        StorageLayout.from_settings(settings).ensure_dirs()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        start = end - timedelta(days=8)
        now = [start]
        state = DerivedState(settings, clock=lambda: now[0].timestamp())
        await state.start()
        harness = DerivedHarness(settings, state)
        rng = random.Random(seed)
        events = 0
        # Different peaks per collection: a busy, a medium and a quiet one.
        for collection, scale in zip(COLLECTIONS, (1.0, 0.5, 0.15), strict=True):
            for day in range(8):
                batch = realistic(rng, collection, start + timedelta(days=day), 24 * 60, peak * scale)
                events += len(batch)
                for i in range(0, len(batch), 5000):
                    await harness.post(batch[i : i + 5000])
        await state.applier.flush()
        fired: list[tuple[str, str | None, str]] = []
        evaluations, slowest, spent = 0, 0.0, 0.0
        now[0] = end - timedelta(days=1)
        while now[0] < end:
            began = time.perf_counter()
            changes = await state.alerts.evaluate()
            took = time.perf_counter() - began
            spent, slowest, evaluations = spent + took, max(slowest, took), evaluations + 1
            fired += [(c["rule"], c["collection_name"], c["started_at"]) for c in changes if c["state"] == "firing"]
            now[0] += timedelta(minutes=step)
        harness.files.close()
        await state.stop()
    print(f"events: {events:,} over 8 days, 3 collections (peak {peak}/min for the busiest)")
    print(f"evaluations over the last day: {evaluations} (every {step} min), "
          f"mean {spent / evaluations * 1000:.0f} ms, slowest {slowest * 1000:.0f} ms")
    print(f"false alerts (CHATLOG_ALERT_MIN_ANSWERS={min_answers}): {len(fired)}")
    for rule, collection, started in fired:
        print(f"  {started} {rule} {collection or '(all)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=5, help="minutes between evaluations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peak", type=float, default=3.0, help="questions per minute at the busiest hour")
    parser.add_argument("--min-answers", type=int, default=20, help="CHATLOG_ALERT_MIN_ANSWERS")
    args = parser.parse_args()
    asyncio.run(run(args.step, args.seed, args.peak, args.min_answers))


if __name__ == "__main__":
    main()
