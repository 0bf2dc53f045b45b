"""The statistics tables' names, apart from their row logic.

Kept free of imports so that a process that only names the tables (the ingestor's
erasure, which recounts rows in SQL) does not load the sketch and with it numpy.
The DDL is the statistics entry of ``shared.db.MIGRATIONS`` (append-only).
"""

from __future__ import annotations

ALL_SCOPE = ""  # the scope of daily rows over every collection
HOURLY = "chat_statistics"
OVERALL = "chat_statistics_overall"
DAILY = "chat_statistics_daily"
QUERIES = "chat_statistics_queries"
SESSIONS = "chat_statistics_sessions"
REACH = "chat_statistics_reach"
