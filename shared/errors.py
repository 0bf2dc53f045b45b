"""Typed domain errors and the one middleware that turns them into one JSON shape.

Every error of both services answers ``{"error": <code>, "message": <text>, ...}``;
handlers raise a ``ChatlogError`` subclass and never build error responses themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
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


HTTP_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal",
    504: "timeout",
}
INTERNAL_MESSAGE = "internal error"


def http_error_body(status: int, message: str) -> dict[str, str]:
    """The one error shape for an HTTP status raised by aiohttp rather than by our handlers."""
    if status >= 500 and status != 504:
        # Whatever aiohttp says about a crash stays in the log.
        message = INTERNAL_MESSAGE
    if not message:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = f"HTTP error {status}"
    return {"error": HTTP_CODES.get(status, "http_error"), "message": message}


async def _static_file_problem(request: web.Request) -> ChatlogError | None:
    """NotFound or Forbidden for a static-folder path that names no readable file.

    aiohttp's static route returns a FileResponse that only notices a missing file when it is
    sent (after every middleware) and then answers with an empty body; checking here first
    keeps those answers in the one JSON shape.
    """
    resource = request.match_info.route.resource
    if not isinstance(resource, web.StaticResource):
        return None
    target = Path(resource.get_info()["directory"]) / request.match_info.get("filename", "")
    try:
        is_file, readable = await asyncio.to_thread(lambda: (target.is_file(), os.access(target, os.R_OK)))
    except (OSError, ValueError):
        # A NUL byte or a name over the file system's limits: no such file either.
        is_file = readable = False
    if not is_file:
        return NotFound(f"no file {request.path}")
    if not readable:
        return Forbidden(f"{request.path} cannot be read")
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn typed errors, aiohttp's HTTP errors and crashes into the one JSON error shape."""
    try:
        problem = await _static_file_problem(request)
        if problem is not None:
            raise problem
        return await handler(request)
    except ChatlogError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return json_response(http_error_body(exc.status, exc.reason), status=exc.status, headers=headers)
    except (HttpProcessingError, web.RequestPayloadError) as exc:
        # A body that breaks its framing or Content-Encoding surfaces while the handler reads
        # it (aiohttp wraps the parser's error in RequestPayloadError): the client's fault.
        cause = exc if isinstance(exc, HttpProcessingError) else exc.__cause__
        detail = cause.message if isinstance(cause, HttpProcessingError) and cause.message else str(exc)
        message = f"the request body cannot be read: {detail}"
        return json_response(http_error_body(400, message), status=400, headers={"Connection": "close"})
    except ConnectionResetError:
        # The client went away mid-request (a body cut short): nobody to answer, nothing of ours broke.
        log.debug("client left during %s %s", request.method, request.path)
        return json_response(http_error_body(400, "the connection was lost"), status=400)
    except Exception:
        # The traceback goes to the log; the client learns nothing about internals.
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_response({"error": "internal", "message": INTERNAL_MESSAGE}, status=500)
