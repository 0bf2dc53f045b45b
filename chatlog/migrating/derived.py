"""The derived state of this node's day files, applied to PostgreSQL without assembling conversations.

``ingestor.derived.state.catch_up_stopped`` is not used here as it is: from an empty
PostgreSQL every line of every day is new, and its conversation consumer would
assemble every conversation again and append each as a new record to the
conversations day files (``ConversationService.observe`` folds every fresh line, and
closing one re-judges it and saves it with a new ``closed_at``, even when its record
exists). The records already exist; they are carried over from SQLite as they are
(``chatlog.migrating.carry``). So this applies the observers a ``DerivedState``
applies (``ingestor.derived.state.line_observers``) and no consumer, and starts no
alert evaluation (the carried-over history is the node's).

The line applier commits each piece with this node's ``ingest_offsets``, so a run
that is killed resumes from what was committed, and a second run applies nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ingestor.derived.applier import LineApplier
from ingestor.derived.state import line_observers
from shared.db import open_store
from shared.layout import StorageLayout
from shared.settings import Settings


async def _apply(settings: Settings, layout: StorageLayout, on_commit: Callable[[int], None]) -> int:
    conn = await open_store(settings)
    try:
        applier = LineApplier(conn, layout, observers=line_observers(settings))
        applier.on_commit = lambda: on_commit(applier.applied_lines)
        await applier.open()
        await applier.catch_up()
        await applier.drain()
        return applier.applied_lines
    finally:
        await conn.close()


def apply_day_files(settings: Settings, layout: StorageLayout, on_commit: Callable[[int], None]) -> int:
    """Apply every day-file line the store has not seen for this node; return how many.

    The caller holds the data directory's writer and derived locks.
    """
    return asyncio.run(_apply(settings, layout, on_commit))
