"""Settings from the environment: defaults, legacy names, errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError, settings_table_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_match_the_contract() -> None:
    """With an empty environment the contract's defaults apply, paths under ./logs."""
    s = Settings.from_env({})
    assert s.data_dir == Path("./logs")
    assert s.db_path == Path("./logs/chatlog.sqlite3")
    assert s.ingest_socket_path == Path("./logs/ingest.sock")
    assert (s.ingest_host, s.ingest_port, s.api_host, s.api_port) == ("127.0.0.1", 8700, "127.0.0.1", 8701)
    assert (s.log_compress_after_days, s.log_retention_days) == (7, 30)
    assert s.conversation_sample_rate == 1.0 and s.conversation_idle_minutes == 30
    assert s.timezone.key == "UTC"


def test_data_dir_moves_derived_paths() -> None:
    """CHATLOG_DATA_DIR moves the database and the socket unless they are set themselves."""
    s = Settings.from_env({"CHATLOG_DATA_DIR": "/srv/chat"})
    assert s.db_path == Path("/srv/chat/chatlog.sqlite3")
    assert s.ingest_socket_path == Path("/srv/chat/ingest.sock")
    s = Settings.from_env({"CHATLOG_DATA_DIR": "/srv/chat", "CHATLOG_DB_PATH": "/db/x.sqlite3"})
    assert s.db_path == Path("/db/x.sqlite3")


def test_empty_socket_turns_it_off() -> None:
    """CHATLOG_INGEST_SOCKET set to empty means no Unix socket."""
    assert Settings.from_env({"CHATLOG_INGEST_SOCKET": ""}).ingest_socket_path is None


def test_guide_names_honoured_when_prefixed_unset() -> None:
    """The guide's unprefixed names work, and the prefixed name wins when both are set."""
    env = {"CONVERSATION_SAMPLE_RATE": "0.2", "CONVERSATION_RETENTION_DAYS": "90",
           "CONVERSATION_COMPRESS_AFTER_DAYS": "3"}
    s = Settings.from_env(env)
    assert (s.conversation_sample_rate, s.conversation_retention_days) == (0.2, 90)
    assert s.conversation_compress_after_days == 3
    s = Settings.from_env({**env, "CHATLOG_CONVERSATION_SAMPLE_RATE": "0.5"})
    assert s.conversation_sample_rate == 0.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHATLOG_INGEST_PORT", "eighty"),
        ("CHATLOG_INGEST_PORT", "70000"),
        ("CHATLOG_CONVERSATION_SAMPLE_RATE", "1.5"),
        ("CONVERSATION_SAMPLE_RATE", "nan"),
        ("CHATLOG_TIMEZONE", "Mars/Olympus"),
        ("CHATLOG_LOG_RETENTION_DAYS", "0"),
        ("CHATLOG_PII_REDACTION", "maybe"),
        ("CHATLOG_PII_EXTRA_PATTERNS", "EMPLOYEE=EMP-(\\d+"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    """A bad value raises SettingsError whose message names the (prefixed) variable."""
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value})
    expected = name if name.startswith("CHATLOG_") else "CHATLOG_" + name
    assert expected in str(err.value)


def test_readme_settings_table_is_current() -> None:
    """The README's settings table is exactly the one generated from the declarative table."""
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- settings:start -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert table == settings_table_markdown()
