"""Typed domain errors and the one middleware that turns them into one JSON shape.

Every error of both services answers ``{"error": <code>, "message": <text>, ...}``;
handlers raise a ``ChatlogError`` subclass and never build error responses themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("chatlog.errors")


class ChatlogError(Exception):
    """Base of every error that reaches a client."""

    status = 500
    code = "internal"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def headers(self) -> Mapping[str, str]:
        """Extra response headers."""
        return {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.code, "message": self.message, **self.extra}


class InvalidJson(ChatlogError):
    """The body is not JSON (or not NDJSON)."""

    status = 400
    code = "invalid_json"


class InvalidBody(ChatlogError):
    """The body cannot be read: an unsupported or corrupt Content-Encoding, or a broken transfer."""

    status = 400
    code = "invalid_body"


class BadParameter(ChatlogError):
    """A query parameter is missing or malformed; ``parameter`` names it."""

    status = 400
    code = "bad_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}", parameter=parameter)


class BadRequest(ChatlogError):
    """A request body is well-formed JSON but not what the endpoint takes."""

    status = 400
    code = "bad_request"


class ValidationFailed(ChatlogError):
    """One or more events break the schema; nothing of the request was stored."""

    status = 422
    code = "validation_failed"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid item(s); nothing was stored", errors=errors)


class Unauthorized(ChatlogError):
    """A bearer token is required and was missing or wrong."""

    status = 401
    code = "unauthorized"

    def headers(self) -> Mapping[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="chatlog"'}


class Forbidden(ChatlogError):
    """The endpoint is turned off (no admin token configured)."""

    status = 403
    code = "forbidden"


class NotFound(ChatlogError):
    """No such resource."""

    status = 404
    code = "not_found"


class TooLarge(ChatlogError):
    """The body is over the configured limit."""

    status = 413
    code = "too_large"


class Unavailable(ChatlogError):
    """Overloaded or storage failing: nothing was stored, retry later."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        if code:
            self.code = code

    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response encoded with msgspec."""
    return web.Response(
        body=msgspec.json.encode(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(error: ChatlogError) -> web.Response:
    """The one JSON shape of every error."""
    return json_response(error.body(), status=error.status, headers=error.headers())


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    400: "bad_request",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn typed errors, aiohttp's HTTP errors and crashes into the one JSON error shape."""
    try:
        return await handler(request)
    except ChatlogError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return json_response(
            {"error": code, "message": exc.reason}, status=exc.status, headers=headers
        )
    except Exception:
        # The traceback goes to the log; the client learns nothing about internals.
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_response({"error": "internal", "message": "internal error"}, status=500)
