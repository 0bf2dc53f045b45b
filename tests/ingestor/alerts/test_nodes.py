"""Two nodes' derived states on one PostgreSQL: an alert fires once, and its notification is sent once."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import timedelta
from pathlib import Path

from tests.ingestor.alerts.test_evaluation import WINDOW, Clock, baseline_week, config, evaluate, feed, running
from tests.support.stores import on_postgres, rows
from tests.support.traffic import BALANCED, stretch
from tests.support.webhook import webhook_receiver


async def test_two_nodes_fire_an_alert_once_and_notify_it_once(tmp_path: Path, postgres_url: str) -> None:
    clock = Clock()
    rng = random.Random(11)
    events = baseline_week(rng, "hr-docs", clock.now)
    events += stretch(rng, "hr-docs", clock.now - timedelta(minutes=WINDOW - 1), WINDOW,
                      dataclasses.replace(BALANCED, error_rate=0.3))
    async with webhook_receiver() as receiver:
        receiver.delay = 0.5  # the first sender is still waiting for its answer when the other node looks
        first = on_postgres(config(tmp_path / "a", receiver.url), postgres_url, "node-a")
        second = on_postgres(config(tmp_path / "b", receiver.url), postgres_url, "node-b")
        async with running(first, clock) as a, running(second, clock) as b:
            await feed(a, events[::2])
            await feed(b, events[1::2])
            # Both evaluate the same shared minutes at once: one of them records the alert.
            changes = await asyncio.gather(evaluate(a), evaluate(b))
            fired = sorted(changes[0] + changes[1], key=lambda c: c[1] or "")
            assert fired == [("error_rate", None, "firing"), ("error_rate", "hr-docs", "firing")]
            assert rows(first, "SELECT rule, scope FROM alerts WHERE state = 'firing' ORDER BY scope") == [
                ("error_rate", ""), ("error_rate", "hr-docs")]
            # Both nodes' deliveries look at the shared outbox at once: one of them sends the row.
            await asyncio.gather(a.state.delivery.deliver_due(), b.state.delivery.deliver_due())
            await receiver.wait_for(2)
            await asyncio.sleep(1.5)
            assert sorted(alert["collection_name"] or "" for alert in receiver.alerts("firing")) == ["", "hr-docs"]
            assert len(receiver.received) == 2
            assert rows(first, "SELECT count(*) FROM alert_outbox") == [(0,)]
            # Evaluated again by both: nothing starts twice.
            assert await asyncio.gather(evaluate(a), evaluate(b)) == [[], []]
            # Quiet again: each interval's evaluation counts once however many nodes evaluate (here the
            # rounds come at once: the node that evaluated last goes on, the other one stands down),
            # so the alerts resolve after alert_resolve_evaluations intervals, not fewer.
            clock.now += timedelta(minutes=WINDOW + 5)
            await feed(a, stretch(rng, "hr-docs", clock.now - timedelta(minutes=WINDOW - 1), WINDOW, BALANCED))
            rounds = []
            for _ in range(first.alert_resolve_evaluations):
                round_changes = await asyncio.gather(evaluate(a), evaluate(b))
                rounds.append(sorted(c[2] for c in round_changes[0] + round_changes[1]))
            assert rounds == [[]] * (first.alert_resolve_evaluations - 1) + [["resolved", "resolved"]]


async def test_a_nodes_storage_alert_is_its_own_and_fires_though_another_node_evaluates(
    tmp_path: Path, postgres_url: str
) -> None:
    """node-b cannot store: its storage_unavailable fires under its own scope even when node-a has just
    judged the shared rules (node-b stands down for those), and node-a's evaluations never clear it."""
    clock = Clock()
    first = on_postgres(config(tmp_path / "a"), postgres_url, "node-a")
    second = on_postgres(config(tmp_path / "b"), postgres_url, "node-b")
    async with running(first, clock) as a, running(second, clock) as b:
        b.state.alerts.storage_down_since = clock.now.timestamp() - 10 * first.alert_storage_seconds
        assert await evaluate(a) == []
        assert await evaluate(b) == [("storage_unavailable", "node:node-b", "firing")]
        for _ in range(first.alert_resolve_evaluations + 1):
            assert await evaluate(a) == []
        assert rows(first, "SELECT rule, scope FROM alerts WHERE state = 'firing'") == [
            ("storage_unavailable", "node:node-b")]
        b.state.alerts.storage_down_since = None
        resolved = [await evaluate(b) for _ in range(first.alert_resolve_evaluations)]
        assert resolved[-1] == [("storage_unavailable", "node:node-b", "resolved")]
