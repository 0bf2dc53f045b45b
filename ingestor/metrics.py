"""The ingestor's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingestor.alerts.totals import TotalsCollector

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngestMetrics:
    """Counters and gauges of one ingestor, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter(
            "chatlog_ingest_events_accepted", "Events acknowledged (written and fsynced)", registry=r
        )
        self.duplicates = Counter(
            "chatlog_ingest_events_duplicate", "Acknowledged events dropped as retries", registry=r
        )
        self.rejected = Counter(
            "chatlog_ingest_events_rejected",
            "Events refused, by reason",
            ["reason"],
            registry=r,
        )
        self.batches = Counter("chatlog_ingest_batches", "Group commits written", registry=r)
        self.otlp_items = Counter(
            "chatlog_otlp_items", "OTLP spans and log records received, by signal and outcome "
            "(stored, rejected, retrieval, ignored: no GenAI data)", ["signal", "outcome"], registry=r,
        )
        self.bytes_written = Counter(
            "chatlog_ingest_bytes_written", "Bytes appended to day files", registry=r
        )
        self.flush_seconds = Histogram(
            "chatlog_ingest_flush_seconds", "Write+fsync time of one group commit",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.ack_seconds = Histogram(
            "chatlog_ingest_ack_seconds", "Time from submission to durable acknowledgement",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge(
            "chatlog_ingest_queue_depth", "Accepted events waiting for the next group commit",
            registry=r,
        )
        self.derived_lag = Gauge(
            "chatlog_ingest_derived_lag_bytes",
            "Bytes of written log lines the derived state (sessions, statistics, conversations) has not read",
            registry=r,
        )
        self.derived_stalled = Gauge(
            "chatlog_ingest_derived_stalled",
            "1 while the derived state has not applied a line for DERIVED_STALL_SECONDS although behind",
            registry=r,
        )
        self.derived_seconds_without_progress = Gauge(
            "chatlog_ingest_derived_seconds_without_progress",
            "Seconds since the derived state last applied a line while behind (0 while it keeps up)",
            registry=r,
        )
        self.derived_quarantined = Counter(
            "chatlog_ingest_derived_quarantined_lines",
            "Day-file lines the derived state could not apply, set aside in quarantined_lines",
            registry=r,
        )
        self.derived_database_up = Gauge(
            "chatlog_ingest_derived_database_up",
            "1 while the derived state's database answers, 0 while it cannot reach it (ingest goes on)",
            registry=r,
        )
        self.derived_restarts = Counter(
            "chatlog_ingest_derived_restarts", "Times the derived-state process died and was restarted", registry=r
        )
        self.spool_bytes = Gauge(
            "chatlog_ingest_spool_bytes",
            "Bytes spooled by the daemon (always 0: it answers 503 and clients spool)",
            registry=r,
        )
        self.storage_errors = Counter(
            "chatlog_ingest_storage_errors", "Failed writes or fsyncs", registry=r
        )
        self.healthy = Gauge("chatlog_ingest_healthy", "1 while storage accepts writes", registry=r)
        self.repaired_bytes = Counter(
            "chatlog_ingest_repaired_bytes", "Torn tail bytes removed at start-up", registry=r
        )
        self.healthy.set(1)
        self.open_conversations = Gauge(
            "chatlog_conversations_open", "Conversations assembled and not yet closed", registry=r
        )
        self.conversations_closed = Counter(
            "chatlog_conversations_closed", "Closed conversations by outcome (saved or dropped)", ["outcome"],
            registry=r,
        )
        self.lifecycle = LifecycleMetrics(r)
        self.alerts_firing = Gauge(
            "chatlog_alerts_firing", "Alerts firing now, by rule (ingestor/alerts/)", ["rule"], registry=r
        )
        self.alert_deliveries = Counter(
            "chatlog_alert_deliveries", "Alert notifications delivered to a webhook", registry=r
        )
        self.collection_totals = TotalsCollector()
        r.register(self.collection_totals)
        self.alert_delivery_failures = Counter(
            "chatlog_alert_delivery_failures", "Failed attempts to deliver an alert notification", registry=r
        )


class LifecycleMetrics:
    """What the storage lifecycle jobs (compression, retention, backups, checks) did."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.files = Counter(
            "chatlog_lifecycle_files", "Day files compressed or deleted, backups written", ["action"],
            registry=r,
        )
        self.bytes_before = Counter(
            "chatlog_lifecycle_bytes_before", "Bytes the lifecycle jobs started from", ["action"], registry=r
        )
        self.bytes_after = Counter(
            "chatlog_lifecycle_bytes_after", "Bytes left after the lifecycle jobs", ["action"], registry=r
        )
        self.wal_bytes = Gauge(
            "chatlog_sqlite_wal_bytes", "Size of the SQLite WAL after the last checkpoint", registry=r
        )
        self.stored_lines = Gauge(
            "chatlog_storage_lines", "Readable lines in day files at the last check", ["stream"], registry=r
        )
        self.torn_lines = Gauge(
            "chatlog_storage_torn_lines", "Torn lines and frames skipped at the last check", ["stream"],
            registry=r,
        )
        self.corrupt_lines = Gauge(
            "chatlog_storage_corrupt_lines", "Undecodable lines skipped at the last check", ["stream"],
            registry=r,
        )
        self.damaged_files = Gauge(
            "chatlog_storage_damaged_files", "Day files found damaged at the last check", registry=r
        )
        self.database_ok = Gauge(
            "chatlog_storage_database_ok", "1 when the last database check passed", registry=r
        )
