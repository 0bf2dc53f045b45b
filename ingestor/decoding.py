"""Request bodies to validated events: one object, an array, or NDJSON; all or nothing.

The fast path decodes the whole body into typed events in one msgspec call; only when
that fails is each item decoded on its own, so that the 422 lists every bad event
with its index, JSON path and reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

from shared.errors import InvalidJson, ValidationFailed
from shared.layout import StorageLayout
from shared.wire import MAX_METADATA_DEPTH

T = TypeVar("T")
_AT = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")
_TOO_DEEP = ("null`, got `array`", "null`, got `object`")


def validation_error_entry(index: int, exc: msgspec.ValidationError) -> dict[str, Any]:
    """One 422 entry from a msgspec error: index, JSON path and reason."""
    match = _AT.match(str(exc))
    message = match.group("message") if match else str(exc)
    path = (match.group("path") if match else None) or "$"
    named = _FIELD.search(message)
    if named:
        # Point at the offending field itself rather than at the object that holds it.
        path = f"{path}.{named.group('name')}"
    elif path.startswith("$.metadata") and message.endswith(_TOO_DEEP):
        # The depth bound is in metadata's type: msgspec reports it as an unexpected container.
        message = f"metadata nests more than {MAX_METADATA_DEPTH} levels of objects and arrays"
    return {"index": index, "path": path, "message": message}


# Building a decoder compiles its type (metadata's nested unions are dozens of nodes):
# once per type, not once per request.
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(type_)
    if decoder is None:
        decoder = _DECODERS[type_] = msgspec.json.Decoder(type_)
    return decoder


def _is_ndjson(content_type: str) -> bool:
    return content_type in {"application/x-ndjson", "application/ndjson", "application/jsonl"}


ItemCheck = Callable[[int, Any], "dict[str, Any] | None"]


def decode_items(body: bytes, content_type: str, type_: type[T], check: ItemCheck | None = None) -> list[T]:
    """Decode a body of one object, an array or NDJSON into ``type_`` items, or raise.

    Raises InvalidJson (400) when the body is not JSON/NDJSON (or nests too deeply to
    parse) and ValidationFailed (422) listing every invalid item when any item breaks
    the schema. ``check`` adds the errors of items that pass the schema but break
    another rule, so that one 422 lists every bad item, whatever is wrong with it.
    """
    if not body.strip():
        raise InvalidJson("empty body: send a JSON object, a JSON array or NDJSON")
    try:
        if not _is_ndjson(content_type):
            try:
                return _decode_json(body, type_, check)
            except _TrailingData:
                pass  # Several JSON lines sent as application/json: read them as NDJSON.
        return _decode_ndjson(body, type_, check)
    except RecursionError:
        # msgspec stops where the interpreter's recursion limit is; no valid item nests
        # anywhere near that deep (metadata is bounded), so this is never a valid body.
        raise InvalidJson("body nests arrays and objects too deeply to be read") from None


class _TrailingData(Exception):
    pass


def _syntax_error(exc: msgspec.DecodeError) -> Exception:
    if "trailing characters" in str(exc):
        return _TrailingData()
    return InvalidJson(f"body is not valid JSON: {exc}")


def _decode_json(body: bytes, type_: type[T], check: ItemCheck | None) -> list[T]:
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        try:
            return _decoder(list[type_]).decode(body)  # type: ignore[valid-type, no-any-return]
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as exc:
            raise InvalidJson(f"body is not valid JSON: {exc}") from None
        try:
            # msgspec stops at the first schema error: the rest may not be JSON at all.
            raws = msgspec.json.decode(body, type=list[msgspec.Raw])
        except msgspec.DecodeError as exc:
            raise InvalidJson(f"body is not valid JSON: {exc}") from None
        return _decode_each(raws, type_, check)
    try:
        return [_decoder(type_).decode(body)]
    except msgspec.ValidationError as exc:
        invalid = exc
    except msgspec.DecodeError as exc:
        raise _syntax_error(exc) from None
    # As for arrays: a body that is not JSON after the schema error is a 400, not a 422.
    try:
        msgspec.json.decode(body, type=msgspec.Raw)
    except msgspec.DecodeError as exc:
        raise _syntax_error(exc) from None
    raise ValidationFailed([validation_error_entry(0, invalid)])


def _decode_ndjson(body: bytes, type_: type[T], check: ItemCheck | None) -> list[T]:
    try:
        return _decoder(type_).decode_lines(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    lines = [line for line in body.split(b"\n") if line.strip()]
    raws: list[msgspec.Raw] = []
    for number, line in enumerate(lines):
        try:
            raws.append(msgspec.json.decode(line, type=msgspec.Raw))
        except msgspec.DecodeError as exc:
            raise InvalidJson(f"line {number + 1} is not valid JSON: {exc}") from None
    return _decode_each(raws, type_, check)


def _decode_each(raws: list[msgspec.Raw], type_: type[T], check: ItemCheck | None) -> list[T]:
    decoder = _decoder(type_)
    items: list[T] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raws):
        try:
            item = decoder.decode(raw)
        except msgspec.ValidationError as exc:
            errors.append(validation_error_entry(index, exc))
            continue
        except msgspec.DecodeError as exc:
            raise InvalidJson(f"item {index} is not valid JSON: {exc}") from None
        items.append(item)
        if check is not None and (problem := check(index, item)) is not None:
            errors.append(problem)
    if errors:
        raise ValidationFailed(errors)
    return items


def as_utc(instant: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (the contract's rule)."""
    tz = instant.tzinfo
    if tz is UTC:
        return instant
    if tz is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def instant_problem(
    index: int, path: str, instant: datetime, latest: datetime, oldest: datetime, retention: str
) -> dict[str, Any] | None:
    """A 422 entry naming ``path`` when ``instant`` is after ``latest`` or before ``oldest``.

    An instant UTC cannot hold (year 1 or 9999 with an offset) is out of range too.
    """
    try:
        utc = as_utc(instant)
    except OverflowError:
        utc = _UTC_MAX if instant.year > 1 else _UTC_MIN
    name = path.rsplit(".", 1)[-1]
    if utc > latest:
        return {"index": index, "path": path, "message": f"{name} is more than a day in the future"}
    if utc < oldest:
        return {"index": index, "path": path, "message": f"{name} is older than the {retention} retention"}
    return None


_UTC_MAX = datetime.max.replace(tzinfo=UTC)
_UTC_MIN = datetime.min.replace(tzinfo=UTC)


def created_at_bounds(layout: StorageLayout, retention_days: int) -> tuple[datetime, datetime]:
    """The oldest and the latest ``created_at`` accepted now: the retention's first day, a day ahead."""
    oldest = layout.day_start(layout.today() - timedelta(days=retention_days))
    return oldest, datetime.now(UTC) + timedelta(days=1)


def created_at_problem(
    index: int, created_at: datetime, latest: datetime, oldest: datetime
) -> dict[str, Any] | None:
    """A 422 entry when an event is dated after ``latest`` or before ``oldest``."""
    return instant_problem(index, "$.created_at", created_at, latest, oldest, "log")
