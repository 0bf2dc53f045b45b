"""OTLP helpers for the receiver's tests: conformance fixtures, posting, and reading back."""

from __future__ import annotations

import gzip
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "otlp"
_TIME = re.compile(r"\$\{T0(?:\+(\d+))?\}")


@dataclass(frozen=True)
class Fixture:
    """One convention variant: what a backend sends and the events chatlog must store."""

    name: str
    endpoint: str
    trace_id: str
    request: dict[str, Any]
    expected: list[dict[str, Any]]


def fixture_names() -> list[str]:
    """Every conformance fixture in ``tests/data/otlp``."""
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def load_fixture(name: str, trace_id: str | None = None, t0_ns: int | None = None) -> Fixture:
    """A fixture with a fresh trace id and its times (``${T0+ms}``) from a second ago."""
    trace = trace_id or secrets.token_hex(16)
    start = t0_ns if t0_ns is not None else time.time_ns() - 5_000_000_000
    text = (FIXTURES / f"{name}.json").read_text()
    text = text.replace("${TRACE}", trace)
    text = _TIME.sub(lambda m: str(start + int(m.group(1) or 0) * 1_000_000), text)
    data = json.loads(text)
    return Fixture(name, data["endpoint"], trace, data["request"], data["expected"])


@dataclass(frozen=True)
class Answer:
    """An HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def post(url: str, body: bytes, content_type: str = "application/json", gzipped: bool = False,
         headers: dict[str, str] | None = None) -> Answer:
    """POST ``body`` and return the answer whatever its status."""
    sent = {"Content-Type": content_type, **(headers or {})}
    if gzipped:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    request = urllib.request.Request(url, data=body, method="POST", headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Answer(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, dict(exc.headers), exc.read())


def stored(data_dir: Path, trace_id: str | None = None) -> list[dict[str, Any]]:
    """Every stored record (of one trace, by its OTLP metadata), in file order."""
    records = []
    for path in sorted((data_dir / "data").glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            record = json.loads(line)
            if trace_id is None or record.get("metadata", {}).get("otlp", {}).get("trace_id") == trace_id:
                records.append(record)
    return records


def matches(record: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What of ``expected`` the record lacks (``True`` = present, any value); empty when it matches."""
    problems = []
    for key, want in expected.items():
        got = record.get(key)
        if want is True:
            if got is None:
                problems.append(f"{key} missing")
        elif isinstance(want, float) or (isinstance(want, dict | list) and _has_float(want)):
            if not _close(got, want):
                problems.append(f"{key}: {got!r} != {want!r}")
        elif got != want:
            problems.append(f"{key}: {got!r} != {want!r}")
    return problems


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _close(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return isinstance(got, int | float) and abs(got - want) < 1e-9
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_close(got[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_close, got, want))
    return bool(got == want)
