"""Deployment artefacts checked by the real tools: docker-compose config and promtool."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from shared.db import connect_store_sync
from shared.settings import SETTINGS, Settings
from tests.conftest import AiohttpClient
from tests.support.events import make_event
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    """The path of a tool `make test` installs; fail (not skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run `make system-deps` (installs it from Debian)")
    return path


def test_compose_file_is_valid() -> None:
    """`docker-compose config` accepts docker-compose.yml with the required secrets set."""
    env = {**os.environ, "CHATLOG_ADMIN_TOKEN": "t", "GRAFANA_ADMIN_PASSWORD": "p"}
    result = subprocess.run([tool("docker-compose"), "config", "-q"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


DEFAULT_SERVICES = {"ingestor", "analytics", "grafana", "prometheus"}
POSTGRES_SERVICES = {"postgres", "ingest-a", "ingest-b", "analytics-pg"}
PROFILE_ENV = {
    "CHATLOG_ADMIN_TOKEN": "t", "GRAFANA_ADMIN_PASSWORD": "p", "POSTGRES_PASSWORD": "pg-secret-1",
    "CHATLOG_USER_HASH_SECRET": "hash-secret-0123456789abcdef", "CHATLOG_ANALYTICS_DB_PASSWORD": "reader-secret-2",
}


def compose_config(*args: str, env: dict[str, str]) -> dict[str, Any]:
    """What docker-compose makes of docker-compose.yml (interpolated, anchors merged)."""
    clean = {k: v for k, v in os.environ.items() if k not in PROFILE_ENV}
    result = subprocess.run([tool("docker-compose"), *args, "config"], cwd=ROOT, env={**clean, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = yaml.safe_load(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source of each volume of a service (short syntax, as `config` prints it)."""
    found = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        found[target] = source
    return found


def test_default_services_are_unchanged_by_the_postgres_profile() -> None:
    """Without a profile compose starts the four SQLite services, identical with the profile on or off."""
    plain = compose_config(env={"CHATLOG_ADMIN_TOKEN": "t", "GRAFANA_ADMIN_PASSWORD": "p"})
    with_profile = compose_config("--profile", "postgres", env=PROFILE_ENV)
    started_by_default = {name for name, svc in plain["services"].items() if not svc.get("profiles")}
    assert started_by_default == DEFAULT_SERVICES
    assert {name for name, svc in plain["services"].items() if svc.get("profiles") == ["postgres"]} == POSTGRES_SERVICES
    for name in DEFAULT_SERVICES:
        default = dict(plain["services"][name])
        assert "CHATLOG_DATABASE_URL" not in default.get("environment", {}), name  # SQLite
        profiled = dict(with_profile["services"][name])
        assert default == profiled, name
    assert _mounts(plain["services"]["ingestor"])["/data"] == "chatlog-data"


def test_postgres_profile_topology() -> None:
    """One PostgreSQL (named volume, health check, password from the environment), two nodes, a stateless reader."""
    config = compose_config("--profile", "postgres", env=PROFILE_ENV)
    services = config["services"]
    assert "pg-secret-1" not in (ROOT / "docker-compose.yml").read_text()

    pg = services["postgres"]
    assert str(pg["image"]).startswith("postgres:")
    assert pg["environment"]["POSTGRES_PASSWORD"] == "pg-secret-1"
    assert _mounts(pg)["/var/lib/postgresql/data"] == "postgres-data"
    assert "postgres-data" in config["volumes"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])

    nodes = [services["ingest-a"], services["ingest-b"]]
    env = [node["environment"] for node in nodes]
    assert [e["CHATLOG_NODE_ID"] for e in env] == ["ingest-a", "ingest-b"]
    assert [_mounts(node)["/data"] for node in nodes] == ["ingest-a-data", "ingest-b-data"]
    for node, node_env in zip(nodes, env, strict=True):
        assert node_env["CHATLOG_DATABASE_URL"] == "postgresql://chatlog:pg-secret-1@postgres:5432/chatlog"
        assert node_env["CHATLOG_USER_HASH_SECRET"] == PROFILE_ENV["CHATLOG_USER_HASH_SECRET"]
        assert node["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert node["command"] == ["chatlog-ingestor"]
        settings = Settings.from_env({k: str(v) for k, v in node_env.items()})
        assert settings.node == node_env["CHATLOG_NODE_ID"] and settings.database_url
    assert len({tuple(node["ports"]) for node in nodes}) == 2

    api = services["analytics-pg"]
    assert api["command"] == ["chatlog-analytics"]
    assert "volumes" not in api  # nothing on disk: it reads PostgreSQL
    assert any(str(entry).startswith("/data:") for entry in api["tmpfs"])
    assert api["environment"]["CHATLOG_DATABASE_URL"] == (
        "postgresql://chatlog_reader:reader-secret-2@postgres:5432/chatlog"
    )
    assert "CHATLOG_DATA_DIR" not in api["environment"]
    assert api["depends_on"]["ingest-a"]["condition"] == "service_healthy"


def test_compose_sets_only_known_settings() -> None:
    """Every CHATLOG_ variable compose passes to a chatlog service is a setting (a typo would be ignored)."""
    known = {setting.env for setting in SETTINGS}
    config = compose_config("--profile", "postgres", env=PROFILE_ENV)
    for name, service in config["services"].items():
        unknown = {k for k in service.get("environment", {}) if k.startswith("CHATLOG_")} - known
        assert not unknown, (name, unknown)


def test_a_database_owner_without_superuser_runs_the_migrations(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """deploy/README.md's writer role: a plain login role owning the database is enough for an ingestor."""
    role = f"writer_{os.getpid()}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        admin.execute(f'CREATE DATABASE "{role}" OWNER "{role}"')
    try:
        url = postgres_server.url(role, user=role)
        settings = Settings.for_data_dir(tmp_path, database_url=url, node_id="node-a")
        connect_store_sync(settings).close()
        with psycopg.connect(url) as conn:
            tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert {"chat_statistics", "conversations", "chatlog_nodes"} <= tables
        assert superuser == (False,)
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_the_image_copies_every_package_the_wheel_ships() -> None:
    """The Dockerfile's builder copies each package pyproject.toml ships (a missing one makes a broken wheel)."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {name.split(".")[0].rstrip("*") for name in include}
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    missing = {name for name in packages if f"COPY {name}/ {name}/" not in dockerfile}
    assert not missing, f"deploy/Dockerfile does not copy {sorted(missing)}"


def test_prometheus_config_is_valid() -> None:
    """promtool accepts the Prometheus scrape configuration shipped in deploy/."""
    result = subprocess.run([tool("promtool"), "check", "config", "deploy/prometheus/prometheus.yml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    """promtool accepts deploy/prometheus/alerts.yml and its unit tests pass (each rule fires, balanced is quiet)."""
    for command in (["check", "rules", "deploy/prometheus/alerts.yml"],
                    ["test", "rules", "deploy/prometheus/tests/alerts_test.yml"]):
        result = subprocess.run([tool("promtool"), *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_provisions_the_alert_rules() -> None:
    """Prometheus in docker-compose loads the same alerts.yml."""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose
    assert "alerts.yml" in (ROOT / "deploy/prometheus/prometheus.yml").read_text()


def _promtool_metrics(text: str) -> None:
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_both_metrics_endpoints_parse(
    client: TestClient[Any, Any], aiohttp_client: AiohttpClient, config: Settings
) -> None:
    """Both services' /metrics are valid Prometheus exposition for promtool."""
    await client.post("/v1/logs", json=[make_event(random.Random(1)) for _ in range(3)])
    _promtool_metrics(await (await client.get("/metrics")).text())
    api = await aiohttp_client(create_analytics(config))
    await api.get("/api/analytics/summary")
    _promtool_metrics(await (await api.get("/metrics")).text())
