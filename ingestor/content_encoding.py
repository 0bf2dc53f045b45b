"""Request bodies sent with a ``Content-Encoding``, inflated within the body limit.

aiohttp's own decompression is turned off for the ingestor (``auto_decompress``):
it answered a corrupt body with a 500 and an unsupported coding with plain text.
Here the compressed body (itself within the limit) is inflated into at most
limit + 1 bytes, so a small body that inflates to gigabytes costs no more memory
than a plain body at the limit.
"""

from __future__ import annotations

import zlib

from shared.errors import InvalidBody, TooLarge

SUPPORTED_ENCODINGS = ("gzip", "deflate", "identity")
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def decoded_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` without its content coding; InvalidBody when it cannot be, TooLarge over ``limit``."""
    coding = (content_encoding or "").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, _GZIP_WBITS, limit, coding)
    if coding == "deflate":
        # HTTP's deflate is the zlib format, but some clients send a raw deflate stream.
        return _inflate(body, zlib.MAX_WBITS if _has_zlib_header(body) else -zlib.MAX_WBITS, limit, coding)
    raise InvalidBody(
        f"Content-Encoding {content_encoding!r} is not supported: send gzip, deflate or no encoding",
        supported=list(SUPPORTED_ENCODINGS),
    )


def _has_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(body: bytes, wbits: int, limit: int, coding: str) -> bytes:
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidBody(f"the body is not valid {coding} data: {exc}") from None
        if len(out) > limit:
            raise TooLarge(f"body is over the limit of {limit} bytes once decompressed", limit=limit)
        if not inflater.eof:
            raise InvalidBody(f"the {coding} body is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)
        if wbits != _GZIP_WBITS:
            raise InvalidBody(f"the {coding} body has data after its end")
        # gzip allows several members one after the other (RFC 1952 §2.2).
