"""Reading a JSON request body strictly, for every endpoint that takes one.

Only `application/json`; UTF-8 (RFC 8259 §8.1) whatever charset the header claims; no
NaN/Infinity; no nesting deep enough to exhaust the parser.

Bodies are parsed by orjson (a C parser, the cheap path for every valid body). The standard
library parses what orjson refuses, and decides: it accepts an escaped unpaired surrogate
(RFC 8259 §8.2 leaves those to the receiver), so the field's own rule can then name the
field. It also parses a body holding a run of 20 or more digits, as orjson reads an integer
beyond 64 bits as a float (RFC 8259 §6 leaves the range to the receiver) and the field's
rule should see the integer the client wrote. A number too large for a float is refused.
Each failure is reported through `fail(status, message)` so the caller raises its own
endpoint's error format.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

import orjson
from aiohttp import web


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} is out of range")
    return value


# A digit run orjson would read as a float (or a long string of digits: the fallback parses
# it the same way, only slower).
_LONG_DIGITS = re.compile(rb"\d{20}")


async def read_json_body(request: web.Request, fail: Callable[[int, str], NoReturn]) -> Any:
    if request.content_type != "application/json":
        fail(415, "Content-Type must be application/json")
    raw = await request.read()
    if not raw.strip():
        fail(400, "Request body is empty")
    if not _LONG_DIGITS.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError):
        fail(400, "Request body is not valid JSON")
