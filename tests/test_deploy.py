"""Deployment artefacts checked by the real tools: docker-compose config and promtool."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.events import make_event

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
