"""Settings: one frozen object built once from the environment over a declarative table.

Every setting is a ``CHATLOG_*`` environment variable. The table ``SETTINGS`` is the
single source of truth: it parses the environment, documents each variable and
generates the README's settings table (``python -m shared.settings``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "CHATLOG_"


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _float_in(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if math.isnan(value) or not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _score_threshold(raw: str) -> float:
    # Quality histograms have bins of 0.01: a threshold on a bin edge makes every rate exact.
    value = _float_in(0.0, 1.0)(raw)
    if abs(value * 100 - round(value * 100)) > 1e-9:
        raise ValueError("must be a multiple of 0.01")
    return round(value, 2)


def _port(raw: str) -> int:
    return _int_in(0, 65535)(raw)


def _zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {raw!r}") from exc


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _text(raw: str) -> str:
    return raw


def _path(raw: str) -> Path:
    return Path(raw)


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _patterns(raw: str) -> tuple[str, ...]:
    """``NAME=REGEX`` items separated by ``;;`` (regexes may contain commas and semicolons)."""
    items = tuple(item.strip() for item in raw.split(";;") if item.strip())
    for item in items:
        name, sep, regex = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name) or not regex:
            raise ValueError(f"{item!r} is not NAME=REGEX with an upper-case NAME")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"bad regular expression in {item!r}: {exc}") from exc
    return items


def _collection_name(raw: str) -> str:
    if not 1 <= len(raw) <= 128:
        raise ValueError("must be 1-128 characters")
    return raw


@dataclass(frozen=True)
class Setting:
    """One environment variable: its field name, default (as text), help, and parser."""

    field: str
    default: str
    help: str
    parse: Callable[[str], Any]
    legacy: str | None = None  # an unprefixed name from the user's guide, honoured when unset

    @property
    def env(self) -> str:
        """The full environment variable name."""
        return PREFIX + self.field.upper()


def _urls(raw: str) -> tuple[str, ...]:
    """Webhook URLs separated by spaces or commas, each http(s)://host..."""
    urls = tuple(u for u in re.split(r"[\s,]+", raw.strip()) if u)
    for url in urls:
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return urls


def _url(raw: str) -> str:
    """One http(s):// URL, or empty."""
    url = raw.strip()
    if url and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


def _database_url(raw: str) -> str:
    """Empty, or a libpq URI (checked for its scheme only; the server judges the rest)."""
    url = raw.strip()
    if url and not re.match(r"postgres(ql)?://", url):
        raise ValueError("must start with postgresql://")
    return url


def _node_id(raw: str) -> str:
    name = raw.strip()
    if name and not re.fullmatch(r"[A-Za-z0-9_-]{1,48}", name):
        raise ValueError("must be 1-48 letters, digits, '-' or '_'")
    return name


# Optional sentence embeddings for the question grouping (insights/embeddings.py).
EMBEDDINGS_SETTINGS: tuple[Setting, ...] = (
    Setting("embeddings_url", "",
            "OpenAI-compatible embeddings server (`POST <url>/v1/embeddings`) whose cosine joins "
            "paraphrases in the question grouping; empty = words only", _url),
    Setting("embeddings_model", "", "the `model` asked of the embeddings server", _text),
    Setting("embeddings_api_key", "", "bearer key for the embeddings server (never logged); empty = none",
            _text),
    Setting("embeddings_timeout_seconds", "30",
            "longest wait for all of a grouping's embeddings; past it, or on any error, the grouping "
            "uses words only (one warning logged)", _float_in(0.1, 3600.0)),
    Setting("embeddings_threshold", "0.85",
            "cosine from which two questions sharing a word count as paraphrases (0.0-1.0)", _float_in(0.0, 1.0)),
)


# The alert rules (CONTRACT "Alerts"; ingestor/alerts/): each threshold is a setting.
ALERT_SETTINGS: tuple[Setting, ...] = (
    Setting("alert_eval_seconds", "60", "how often the alert rules are evaluated (seconds)", _int_in(1, 3600)),
    Setting("alert_window_minutes", "15", "the alert rules' window, compared with the previous 7 days",
            _int_in(1, 1440)),
    Setting("alert_webhook_url", "",
            "where alert notifications are POSTed (several: separated by spaces or commas; empty = none)",
            _urls),
    Setting("alert_dashboard_url", "",
            "the dashboard link in notifications (empty = `http://$CHATLOG_API_HOST:$CHATLOG_API_PORT/`)",
            _text),
    Setting("alert_min_answers", "20", "answers a window needs before error, latency and score rules judge it",
            _int_in(1, 1_000_000)),
    Setting("alert_error_rate", "0.05", "error_rate fires at this error rate or more ...", _float_in(0.0, 1.0)),
    Setting("alert_error_factor", "3.0", "... and at this many times the baseline rate or more",
            _float_in(1.0, 1000.0)),
    Setting("alert_latency_factor", "2.0", "latency_p95 fires at this many times the baseline p95 or more ...",
            _float_in(1.0, 1000.0)),
    Setting("alert_latency_min_ms", "1000", "... and at this p95 (ms) or more", _int_in(0, 2**31 - 1)),
    Setting("alert_low_score_rate", "0.30", "low_score_rate fires at this low-score rate or more ...",
            _float_in(0.0, 1.0)),
    Setting("alert_low_score_factor", "2.0", "... and at this many times the baseline rate or more",
            _float_in(1.0, 1000.0)),
    Setting("alert_volume_ratio", "0.2", "volume_drop fires when a window's queries are under this share of "
            "the baseline's", _float_in(0.0, 1.0)),
    Setting("alert_volume_min_baseline", "20", "volume_drop judges only windows whose baseline has this many "
            "queries", _int_in(1, 1_000_000)),
    Setting("alert_storage_seconds", "60", "storage_unavailable fires when storing has failed this long (s)",
            _int_in(1, 86400)),
    Setting("alert_resolve_evaluations", "3", "a firing alert resolves after this many evaluations in a row "
            "clearly below its threshold", _int_in(1, 1000)),
)


def _schedule(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"weekly", "daily", "off"}:
        raise ValueError("must be weekly, daily or off")
    return value


# The suggestions (insights/suggestions.py) and the scheduled report: each threshold is a setting.
SUGGEST_SETTINGS: tuple[Setting, ...] = (
    Setting("suggest_min_answers", "20", "answers (for negative_feedback: pieces of feedback) a collection, model "
            "or reasoning level needs before a suggestion is made about it", _int_in(1, 1_000_000)),
    Setting("suggest_low_score_rate", "0.30", "low_retrieval: a collection's low-score rate at or above this",
            _float_in(0.0, 1.0)),
    Setting("suggest_regeneration_rate", "0.15", "high_regeneration: a regeneration rate (per answer) at or above "
            "this", _float_in(0.0, 1.0)),
    Setting("suggest_slow_p95_ms", "5000", "slow_responses: a model's p95 response time (ms) at or above this",
            _int_in(1, 2**31 - 1)),
    Setting("suggest_error_rate", "0.05", "errors: a collection's error rate (per answer) at or above this",
            _float_in(0.0, 1.0)),
    Setting("suggest_negative_feedback_rate", "0.30", "negative_feedback: a collection's share of negative "
            "feedback at or above this", _float_in(0.0, 1.0)),
    Setting("report_schedule", "weekly", "write `reports/<period>.html` under the data directory after each "
            "week (`weekly`, e.g. `2026-W48.html`) or day (`daily`, `2026-12-01.html`), or never (`off`)",
            _schedule),
)


# Defaults that name "$CHATLOG_DATA_DIR" are resolved against the data directory.
SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "./logs", "root of all stored data", _path),
    Setting("db_path", "$CHATLOG_DATA_DIR/chatlog.sqlite3", "the SQLite file", _path),
    Setting("database_url", "",
            "`postgresql://user:password@host:port/dbname` keeps the derived state in a PostgreSQL shared by "
            "many ingestors instead of SQLite (never logged); empty = SQLite at CHATLOG_DB_PATH", _database_url),
    Setting("node_id", "", "this ingestor's name among those sharing CHATLOG_DATABASE_URL (letters, digits, `-`, "
            "`_`; empty = the host name)", _node_id),
    Setting("timezone", "UTC", "IANA zone for file days and statistic dates/hours", _zone),
    Setting("ingest_host", "127.0.0.1", "ingest TCP listener address", _text),
    Setting("ingest_port", "8700", "ingest TCP listener port", _port),
    Setting(
        "ingest_socket",
        "$CHATLOG_DATA_DIR/ingest.sock",
        "ingest Unix socket, mode 0660 (empty = off)",
        _text,
    ),
    Setting(
        "ingest_token",
        "",
        "when set, TCP ingest requires `Authorization: Bearer <token>`",
        _text,
    ),
    Setting("api_host", "127.0.0.1", "analytics API listener address", _text),
    Setting("api_port", "8701", "analytics API listener port", _port),
    Setting(
        "admin_token",
        "",
        "bearer token for admin endpoints; empty = admin endpoints answer 403",
        _text,
    ),
    Setting(
        "user_hash_secret",
        "",
        "key of the keyed hash (HMAC-SHA256) of user ids; empty = generated on first start "
        "and kept in `$CHATLOG_DATA_DIR/.user_hash_secret` (0600)",
        _text,
    ),
    Setting("log_compress_after_days", "7", "log day files older than this are zstd-compressed",
            _int_in(1, 3650)),
    Setting("log_retention_days", "30", "log day files older than this are deleted",
            _int_in(1, 36500)),
    Setting("conversation_compress_after_days", "7",
            "conversation day files older than this are zstd-compressed", _int_in(1, 3650),
            legacy="CONVERSATION_COMPRESS_AFTER_DAYS"),
    Setting("conversation_retention_days", "30",
            "conversation day files older than this are deleted", _int_in(1, 36500),
            legacy="CONVERSATION_RETENTION_DAYS"),
    Setting("conversation_sample_rate", "1.0",
            "probability of keeping a conversation no rule keeps (0.0-1.0)", _float_in(0.0, 1.0),
            legacy="CONVERSATION_SAMPLE_RATE"),
    Setting("conversation_idle_minutes", "30",
            "a conversation idle this long is closed and judged for saving", _int_in(1, 10080)),
    Setting("max_body_bytes", "5242880", "largest accepted request body (bytes)",
            _int_in(1024, 1 << 30)),
    Setting("batch_max_events", "4096",
            "most events written and fsynced together in one group commit", _int_in(1, 1_000_000)),
    Setting("flush_interval_ms", "0",
            "extra wait for more events before a group commit (0: none; the next batch gathers "
            "while the current fsync runs)", _int_in(0, 10_000)),
    Setting("queue_max_events", "65536",
            "accepted-but-unwritten events above which ingest answers 503", _int_in(1, 10_000_000)),
    Setting("idempotency_window", "200000",
            "how many recent log_ids are remembered to drop retried events", _int_in(0, 10_000_000)),
    Setting("zstd_level", "6", "zstandard level for compressed day files", _int_in(1, 22)),
    Setting("derived_sweep_seconds", "30",
            "how often the derived state looks for older day files that grew unannounced (a stat per day file)",
            _float_in(0.1, 3600.0)),
    Setting("backup_keep", "7", "how many daily SQLite backups are kept", _int_in(1, 3650)),
    Setting("pii_redaction", "true", "redact e-mails, phones, RRNs and card numbers in content",
            _bool),
    Setting("pii_extra_patterns", "",
            "extra redactions: `NAME=REGEX` items separated by `;;`, replaced by `[NAME]`",
            _patterns),
    Setting("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR", _log_level),
    Setting("otlp_host", "127.0.0.1", "OTLP/HTTP receiver address (`/v1/traces`, `/v1/logs`)", _text),
    Setting("otlp_port", "4318", "OTLP/HTTP receiver port (`0` = off)", _port),
    Setting("otlp_default_collection", "default",
            "collection of OTLP spans that name none (`chatlog.collection_name`, `gen_ai.data_source.id`)",
            _collection_name),
    Setting("otlp_join_seconds", "600",
            "how long an OTLP retrieval span waits (durably) for its trace's chat span from a later request",
            _int_in(1, 86400)),
    *ALERT_SETTINGS,
    Setting("low_score_threshold", "0.5",
            "an answer whose best retrieval score is under this is a low-score answer (0.0-1.0, "
            "in steps of 0.01)", _score_threshold),
    Setting("faq_min_count", "3",
            "question groups asked fewer times are left out of the FAQ and the knowledge gaps", _int_in(1, 1_000_000)),
    *EMBEDDINGS_SETTINGS,
    *SUGGEST_SETTINGS,
    Setting("faq_warmup", "true",
            "analytics API: load Kiwi and group the last 7 and 30 days in the background at start "
            "(the first FAQ/quality request is warm; costs the model's memory, see the FAQ section)", _bool),
)


@dataclass(frozen=True)
class Settings:
    """Every setting of both services, parsed and validated."""

    data_dir: Path = Path("./logs")
    db_path: Path = Path("./logs/chatlog.sqlite3")
    database_url: str = field(default="", repr=False)
    node_id: str = ""
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8700
    ingest_socket: str = "./logs/ingest.sock"
    ingest_token: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 8701
    admin_token: str = ""
    user_hash_secret: str = ""
    log_compress_after_days: int = 7
    log_retention_days: int = 30
    conversation_compress_after_days: int = 7
    conversation_retention_days: int = 30
    conversation_sample_rate: float = 1.0
    conversation_idle_minutes: int = 30
    max_body_bytes: int = 5 * 1024 * 1024
    batch_max_events: int = 4096
    flush_interval_ms: int = 0
    queue_max_events: int = 65536
    idempotency_window: int = 200_000
    zstd_level: int = 6
    derived_sweep_seconds: float = 30.0
    backup_keep: int = 7
    pii_redaction: bool = True
    pii_extra_patterns: tuple[str, ...] = ()
    log_level: str = "INFO"
    otlp_host: str = "127.0.0.1"
    otlp_port: int = 4318
    otlp_default_collection: str = "default"
    otlp_join_seconds: int = 600
    alert_eval_seconds: int = 60
    alert_window_minutes: int = 15
    alert_webhook_url: tuple[str, ...] = ()
    alert_dashboard_url: str = ""
    low_score_threshold: float = 0.5
    faq_min_count: int = 3
    embeddings_url: str = ""
    embeddings_model: str = ""
    embeddings_api_key: str = field(default="", repr=False)
    embeddings_timeout_seconds: float = 30.0
    embeddings_threshold: float = 0.85
    faq_warmup: bool = True
    alert_min_answers: int = 20
    alert_error_rate: float = 0.05
    alert_error_factor: float = 3.0
    alert_latency_factor: float = 2.0
    alert_latency_min_ms: int = 1000
    alert_low_score_rate: float = 0.30
    alert_low_score_factor: float = 2.0
    alert_volume_ratio: float = 0.2
    alert_volume_min_baseline: int = 20
    alert_storage_seconds: int = 60
    alert_resolve_evaluations: int = 3
    suggest_min_answers: int = 20
    suggest_low_score_rate: float = 0.30
    suggest_regeneration_rate: float = 0.15
    suggest_slow_p95_ms: int = 5000
    suggest_error_rate: float = 0.05
    suggest_negative_feedback_rate: float = 0.30
    report_schedule: str = "weekly"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; raise SettingsError naming a bad variable."""
        env = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        for setting in SETTINGS:
            if setting.env in env:
                raw[setting.field] = env[setting.env]
            elif setting.legacy and setting.legacy in env:
                raw[setting.field] = env[setting.legacy]
        return cls.from_values(raw)

    @classmethod
    def from_values(cls, raw: Mapping[str, str]) -> Settings:
        """Parse text values by field name over the defaults; unknown names are an error."""
        known = {s.field: s for s in SETTINGS}
        unknown = set(raw) - set(known)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        data_dir_text = raw.get("data_dir", known["data_dir"].default)
        values: dict[str, Any] = {}
        for name, setting in known.items():
            text = raw.get(name, setting.default)
            text = text.replace("$CHATLOG_DATA_DIR", data_dir_text.rstrip("/") or "/")
            try:
                values[name] = setting.parse(text)
            except ValueError as exc:
                hidden = ("token", "secret", "key", "database_url")
                shown = "<hidden>" if any(word in name for word in hidden) else repr(text)
                raise SettingsError(f"{setting.env}={shown}: {exc}") from None
        return cls(**values)

    @classmethod
    def for_data_dir(cls, data_dir: Path | str, **overrides: Any) -> Settings:
        """Settings rooted at ``data_dir`` with typed overrides (what tests and tools use)."""
        base = cls.from_values({"data_dir": str(data_dir)})
        return dataclasses.replace(base, **overrides)

    @property
    def node(self) -> str:
        """This ingestor's node name: CHATLOG_NODE_ID, else the host name made safe for it."""
        if self.node_id:
            return self.node_id
        return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:48] or "node"

    @property
    def ingest_socket_path(self) -> Path | None:
        """The Unix socket path, or None when the socket is turned off."""
        return Path(self.ingest_socket) if self.ingest_socket else None


def settings_table_markdown() -> str:
    """The README's settings table, generated from ``SETTINGS``."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "empty"
        legacy = f" (also `{s.legacy}`)" if s.legacy else ""
        lines.append(f"| {s.env}{legacy} | {default} | {s.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(settings_table_markdown() + "\n")
