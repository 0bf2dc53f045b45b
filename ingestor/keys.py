"""Typed application state of the ingestor."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ingestor.conversations.service import ConversationService
from ingestor.dayfiles import DayFileWriter
from ingestor.derived.process import DerivedStateProcess
from ingestor.feedback import FeedbackBuilder
from ingestor.metrics import IngestMetrics
from ingestor.otlp.pending import PendingRetrievals
from ingestor.records import RecordBuilder
from ingestor.writer import GroupCommitWriter
from shared.layout import StorageLayout
from shared.settings import Settings

settings_key = web.AppKey("settings", Settings)
layout_key = web.AppKey("layout", StorageLayout)
metrics_key = web.AppKey("metrics", IngestMetrics)
builder_key = web.AppKey("builder", RecordBuilder)
feedback_builder_key = web.AppKey("feedback_builder", FeedbackBuilder)
files_key = web.AppKey("files", DayFileWriter)
writer_key = web.AppKey("writer", GroupCommitWriter)
derived_key = web.AppKey("derived", DerivedStateProcess)
# Judges and stores conversations posted whole (assembly from events is the derived process's).
conversations_key = web.AppKey("conversations", ConversationService)
# One erasure at a time (``POST /v1/admin/erase-user``).
erasure_lock_key = web.AppKey("erasure_lock", asyncio.Lock)
# The OTLP/HTTP receiver (its own application on CHATLOG_OTLP_PORT): the ingest application
# whose record builder and writer it stores through, and the retrievals awaiting their chat span.
otlp_ingest_key = web.AppKey("otlp_ingest", web.Application)
otlp_pending_key = web.AppKey("otlp_pending", PendingRetrievals)
