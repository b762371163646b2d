"""Request bodies a service cannot read: refused, and the connection closed behind them.

No endpoint takes a compressed body, so a request `Content-Encoding` other than `identity` is
refused with 415 and `Accept-Encoding: identity` (RFC 9110 §15.5.16, §12.5.3). aiohttp's
parser is told not to decode bodies at all (`HANDLER_ARGS`): a body that fails to decode
leaves that parser broken, and the next request on the connection (through the gateway's
keep-alive pool, another user's) would be lost.

Any answer to a request whose body could not be read (the coding refused here, a payload
error such as a truncated chunked body) carries `Connection: close` and closes the connection
(`close_after_unreadable_body`), so no proxy reuses a connection whose framing may be lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import hdrs, web

from .errors import error_for_path

__all__ = [
    "HANDLER_ARGS",
    "close_after_unreadable_body",
    "content_coding_middleware",
]

# web.Application(handler_args=...): the request parser passes bodies through undecoded.
HANDLER_ARGS: Final[dict[str, Any]] = {"auto_decompress": False}
_IDENTITY: Final = frozenset({"", "identity"})
_UNREADABLE: Final = web.RequestKey("unreadable_body", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def unsupported_coding(request: web.Request) -> bool:
    """Whether the request names a content coding other than identity (RFC 9110 §8.4)."""
    codings = request.headers.getall(hdrs.CONTENT_ENCODING, [])
    return any(
        part.strip().lower() not in _IDENTITY for value in codings for part in value.split(",")
    )


@web.middleware
async def content_coding_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """415 in the endpoint's error format for a compressed body, before anything reads it."""
    if unsupported_coding(request):
        request[_UNREADABLE] = True
        return error_for_path(
            request.path,
            415,
            "Content-Encoding is not supported: send the body uncompressed",
            {hdrs.ACCEPT_ENCODING: "identity", hdrs.CACHE_CONTROL: "no-store"},
        )
    return await handler(request)


async def close_after_unreadable_body(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: `Connection: close` after a body that could not be read (set by
    hand: aiohttp computed its headers before this hook, `force_close` alone would close the
    connection without saying so)."""
    if request.get(_UNREADABLE) or request.content.exception() is not None:
        response.force_close()
        response.headers[hdrs.CONNECTION] = "close"
