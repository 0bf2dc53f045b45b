"""Typed application state of the analytics API."""

from __future__ import annotations

from aiohttp import web

from analytics_api.groupings import Groupings
from analytics_api.metrics import AnalyticsMetrics
from analytics_api.read_pool import ReadPool
from shared.layout import StorageLayout
from shared.settings import Settings

settings_key = web.AppKey("settings", Settings)
layout_key = web.AppKey("layout", StorageLayout)
metrics_key = web.AppKey("metrics", AnalyticsMetrics)
database_key = web.AppKey("database", ReadPool)
groupings_key = web.AppKey("groupings", Groupings)
