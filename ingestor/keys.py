"""Typed application state of the ingestor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ingestor.conversations.service import ConversationService
from ingestor.dayfiles import DayFileWriter
from ingestor.derived.process import DerivedStateProcess
from ingestor.metrics import IngestMetrics
from ingestor.records import RecordBuilder
from ingestor.writer import GroupCommitWriter
from shared.layout import StorageLayout
from shared.settings import Settings

if TYPE_CHECKING:
    from ingestor.scheduler import ScheduledJob

settings_key = web.AppKey("settings", Settings)
layout_key = web.AppKey("layout", StorageLayout)
metrics_key = web.AppKey("metrics", IngestMetrics)
builder_key = web.AppKey("builder", RecordBuilder)
files_key = web.AppKey("files", DayFileWriter)
writer_key = web.AppKey("writer", GroupCommitWriter)
derived_key = web.AppKey("derived", DerivedStateProcess)
# Judges and stores conversations posted whole (assembly from events is the derived process's).
conversations_key = web.AppKey("conversations", ConversationService)
# Each factory returns the ingestor's scheduled jobs of one concern (lifecycle, statistics, ...).
job_factories_key = web.AppKey("job_factories", list[Callable[[web.Application], list["ScheduledJob"]]])
