"""Hypothesis strategies: valid events and conversations, and hostile bodies that no rule may let through."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from shared.wire import MAX_MEASURE, MAX_METADATA_DEPTH, MAX_SAFE_INTEGER

CONTENT_TYPES = ("application/json", "application/x-ndjson", "application/ndjson", "application/jsonl",
                 "text/plain", "application/octet-stream", "")

# The integer fields of an event, each with the largest value storage takes.
INTEGER_BOUNDS = {
    "$.performance.response_time_ms": MAX_MEASURE,
    "$.performance.token_count": MAX_MEASURE,
    "$.performance.retrieval_time_ms": MAX_MEASURE,
    "$.llm_params.max_tokens": MAX_SAFE_INTEGER,
    "$.retrieval_info.retrieved_count": MAX_SAFE_INTEGER,
}

# Dates whose UTC instant is outside what datetime holds, or absurdly far from now.
EXTREME_DATES = (
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00", "9999-01-01T00:00:00+00:00", "1970-01-01T00:00:00Z",
)

ids = st.text(min_size=1, max_size=128)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | finite_floats | st.text()
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda minutes: timezone(timedelta(minutes=minutes)))


def json_values(levels: int) -> st.SearchStrategy[Any]:
    """JSON values holding at most ``levels`` levels of arrays and objects."""
    if levels == 0:
        return scalars
    inner = json_values(levels - 1)
    return scalars | st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)


metadata = st.dictionaries(st.text(max_size=8), json_values(MAX_METADATA_DEPTH - 1), max_size=3)


@st.composite
def instants(draw: st.DrawFn, behind: timedelta = timedelta(days=28), ahead: timedelta = timedelta(hours=23)) -> str:
    """An RFC 3339 instant between ``behind`` ago and ``ahead`` from now, in any offset or none."""
    span = int((behind + ahead).total_seconds() * 1_000_000)
    instant = datetime.now(UTC) - behind + timedelta(microseconds=draw(st.integers(0, span)))
    zone = draw(st.none() | st.just(UTC) | offsets)
    # A fixed timespec: isoformat drops a zero microsecond, and a body whose length depends on
    # the clock makes hypothesis's draws differ between a test case and its replay.
    if zone is None:
        return instant.replace(tzinfo=None).isoformat(timespec="microseconds")
    return instant.astimezone(zone).isoformat(timespec="microseconds")


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """A ``POST /v1/logs`` event that breaks no rule, with any subset of the optional fields."""
    event: dict[str, Any] = {
        "session_id": draw(ids), "collection_name": draw(ids),
        "message_type": draw(st.sampled_from(["user", "assistant"])), "message_content": draw(st.text()),
    }
    optional: dict[str, Any] = {
        "log_id": draw(_optional(ids)),
        "conversation_id": draw(_optional(ids)),
        "user_id": draw(_optional(st.text())),
        "reasoning_level": draw(_optional(st.sampled_from(["low", "medium", "high"]))),
        "llm_model": draw(_optional(st.text(max_size=20))),
        "llm_params": draw(_optional(st.fixed_dictionaries({}, optional={
            "temperature": finite_floats, "top_p": finite_floats,
            "max_tokens": st.integers(0, MAX_SAFE_INTEGER)}))),
        "retrieval_info": draw(_optional(st.fixed_dictionaries({}, optional={
            "query": st.text(max_size=30), "retrieved_count": st.integers(0, MAX_SAFE_INTEGER),
            "reranking_used": st.booleans(), "top_scores": st.lists(finite_floats, max_size=4)}))),
        "retrieved_docs": draw(_optional(st.lists(st.fixed_dictionaries({}, optional={
            "doc_id": st.text(max_size=10), "title": st.text(max_size=10), "score": finite_floats,
            "source": st.text(max_size=10)}), max_size=3))),
        "performance": draw(_optional(st.fixed_dictionaries({}, optional={
            name.rsplit(".", 1)[1]: st.integers(0, MAX_MEASURE)
            for name in INTEGER_BOUNDS if name.startswith("$.performance")}))),
        "status": draw(_optional(st.sampled_from(["ok", "error"]))),
        "error": draw(_optional(st.fixed_dictionaries({}, optional={
            "type": st.text(max_size=10), "message": st.text(max_size=10)}))),
        "is_regeneration": draw(_optional(st.booleans())),
        "endpoint": draw(_optional(st.sampled_from(["chat", "stream", "regenerate"]))),
        "metadata": draw(_optional(metadata)),
        "created_at": draw(_optional(instants())),
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    return event


@st.composite
def valid_conversations(draw: st.DrawFn) -> dict[str, Any]:
    """A ``POST /v1/conversations`` body that breaks no rule."""
    messages = draw(st.lists(st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant"]), "content": st.text(max_size=40)},
        optional={"timestamp": instants(behind=timedelta(days=27)), "is_regeneration": st.booleans(),
                  "error": st.booleans(), "retrieval_scores": st.lists(finite_floats, max_size=3)},
    ), min_size=1, max_size=4))
    return {"conversation_id": draw(ids), "collection_name": draw(ids), "messages": messages,
            **({"metadata": draw(metadata)} if draw(st.booleans()) else {})}


def nested(levels: int, kind: str) -> str:
    """JSON arrays or objects nested ``levels`` deep."""
    return "[" * levels + "]" * levels if kind == "array" else '{"a":' * levels + "1" + "}" * levels


def set_path(item: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``item`` with ``$.a.b`` set to ``value`` (objects on the way created)."""
    *parents, leaf = path.removeprefix("$.").split(".")
    target = item
    for name in parents:
        target = target.setdefault(name, {})
    target[leaf] = value
    return item


def out_of_bounds(bound: int) -> st.SearchStrategy[int]:
    """Integers above ``bound`` (up to far past int64) or below zero."""
    return st.integers(bound + 1, 2**70) | st.integers(-(2**70), -1)


def _event_breaker(draw: st.DrawFn, event: dict[str, Any]) -> str:
    """``event`` broken one way, as the JSON text of one item."""
    how = draw(st.sampled_from(["integer", "date", "deep_metadata", "metadata_integer", "unknown", "missing"]))
    if how == "integer":
        path = draw(st.sampled_from(sorted(INTEGER_BOUNDS)))
        return json.dumps(set_path(event, path, draw(out_of_bounds(INTEGER_BOUNDS[path]))))
    if how == "date":
        return json.dumps(event | {"created_at": draw(st.sampled_from(EXTREME_DATES))})
    if how == "deep_metadata":
        levels = draw(st.integers(MAX_METADATA_DEPTH, 3_000))
        return json.dumps(event | {"metadata": None}).replace(
            '"metadata": null', f'"metadata": {{"x": {nested(levels, draw(st.sampled_from(["array", "object"])))}}}')
    if how == "metadata_integer":
        beyond = st.integers(MAX_SAFE_INTEGER + 1, 2**70) | st.integers(-(2**70), -MAX_SAFE_INTEGER - 1)
        return json.dumps(event | {"metadata": {"n": [draw(beyond)]}})
    if how == "unknown":
        return json.dumps(event | {"no_such_field": 1})
    del event["session_id"]
    return json.dumps(event)


def _conversation_breaker(draw: st.DrawFn, conversation: dict[str, Any]) -> str:
    how = draw(st.sampled_from(["date", "ahead", "deep_metadata", "no_messages", "role"]))
    message = conversation["messages"][-1]
    if how == "date":
        message["timestamp"] = draw(st.sampled_from(EXTREME_DATES))
    elif how == "ahead":
        ahead = timedelta(days=draw(st.integers(2, 2_800_000)))  # up to year ~9700: still a datetime
        message["timestamp"] = (datetime.now(UTC) + ahead).isoformat(timespec="microseconds")
    elif how == "deep_metadata":
        levels = draw(st.integers(MAX_METADATA_DEPTH, 3_000))
        return json.dumps(conversation | {"metadata": None}).replace(
            '"metadata": null', f'"metadata": {{"x": {nested(levels, "array")}}}')
    elif how == "no_messages":
        conversation["messages"] = []
    else:
        message["role"] = "system"
    return json.dumps(conversation)


def _encode(draw: st.DrawFn, body: bytes) -> tuple[bytes, dict[str, str]]:
    """``body`` sent plain, or compressed, or claimed compressed and not."""
    how = draw(st.sampled_from(["plain", "gzip", "deflate", "corrupt", "truncated", "unknown"]))
    if how == "plain":
        return body, {}
    if how in ("gzip", "deflate"):
        return (gzip.compress(body, mtime=0) if how == "gzip" else zlib.compress(body)), {"Content-Encoding": how}
    if how == "corrupt":
        return body, {"Content-Encoding": draw(st.sampled_from(["gzip", "deflate", "x-gzip"]))}
    if how == "truncated":
        packed = gzip.compress(body, mtime=0)
        # A share of the length, not a length: the compressed size depends on the clock's digits,
        # and a draw whose bounds change between a case and its replay makes hypothesis fail.
        cut = min(len(packed) - 1, int(len(packed) * draw(st.floats(0, 1, exclude_max=True))))
        return packed[:cut], {"Content-Encoding": "gzip"}
    return body, {"Content-Encoding": draw(st.sampled_from(["br", "zstd", "compress", "gzip, gzip", "x"]))}


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """(endpoint, body, headers) of a request that must be refused with a 4xx and store nothing."""
    endpoint = draw(st.sampled_from(["/v1/logs", "/v1/conversations"]))
    how = draw(st.sampled_from(["broken_item", "binary", "truncated", "deep"]))
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if how == "binary":
        # Without a required field's name no body can be valid.
        text = draw(st.binary(max_size=300).filter(lambda b: b"_id" not in b and b"\\" not in b))
    elif how == "deep":
        text = nested(draw(st.integers(900, 20_000)), draw(st.sampled_from(["array", "object"]))).encode()
        text = draw(st.sampled_from([text, b"[" + text + b"]"]))
    elif endpoint == "/v1/logs":
        good = [json.dumps(e) for e in draw(st.lists(valid_events(), max_size=3))]
        bad = _event_breaker(draw, draw(valid_events()))
        items = [*good]
        items.insert(draw(st.integers(0, len(good))), bad)
        if how == "truncated":
            whole = f"[{', '.join(items)}]"
            text = whole[: draw(st.integers(1, len(whole) - 1))].encode()
        elif content_type in ("application/x-ndjson", "application/ndjson", "application/jsonl"):
            text = "\n".join(items).encode()
        else:
            text = f"[{', '.join(items)}]".encode()
    else:
        whole = _conversation_breaker(draw, draw(valid_conversations()))
        text = (whole[: draw(st.integers(1, len(whole) - 1))] if how == "truncated" else whole).encode()
    body, headers = _encode(draw, text)
    return endpoint, body, {"Content-Type": content_type, **headers} if content_type else headers
