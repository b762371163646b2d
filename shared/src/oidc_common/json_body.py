"""Reading a JSON request body strictly, for every endpoint that takes one.

Only `application/json`; UTF-8 (RFC 8259 §8.1) whatever charset the header claims; no
NaN/Infinity; no nesting deep enough to exhaust the parser.

Bodies are parsed by orjson (a C parser, the cheap path for every valid body). What it
refuses is parsed again by the standard library, which decides: it accepts an escaped
unpaired surrogate (RFC 8259 §8.2 leaves those to the receiver), so the field's own rule
can then name the field, as it always has. Each failure is reported
through `fail(status, message)` so the caller raises its own endpoint's error format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import orjson
from aiohttp import web


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json_body(request: web.Request, fail: Callable[[int, str], NoReturn]) -> Any:
    if request.content_type != "application/json":
        fail(415, "Content-Type must be application/json")
    raw = await request.read()
    if not raw.strip():
        fail(400, "Request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        fail(400, "Request body is not valid JSON")
