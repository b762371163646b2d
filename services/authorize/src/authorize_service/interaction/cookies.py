"""Reading the cookies this service sets: random URL-safe values (`secrets.token_urlsafe`).

Anything else under the same name (a value tossed by a sibling domain, bytes that are not
text) is treated as absent rather than trusted or allowed to fail a request.
"""

from __future__ import annotations

import re

from aiohttp import web

_OUR_VALUE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def our_cookie(request: web.Request, name: str) -> str | None:
    value = request.cookies.get(name)
    return value if value is not None and _OUR_VALUE.match(value) else None
