"""Reading the parameters of an authorization request (OIDC Core §3.1.2.1).

`GET` carries them in the query, `POST` in an `application/x-www-form-urlencoded` body. A
parameter sent twice is remembered, not dropped: RFC 6749 §3.1 forbids it, and the error is
reported once the client and its redirect URI are known (before that, only a page can say it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

FORM = "application/x-www-form-urlencoded"
MAX_PARAMETERS = 64
MAX_VALUE = 4096


class UnreadableRequest(Exception):
    """The request's parameters cannot be read at all (not form data, too many, too long)."""


# RFC 8707 §2: the one parameter a request may repeat.
REPEATABLE = frozenset({"resource"})


@dataclass(frozen=True)
class Parameters:
    """One value per parameter (the last one), every value of a repeatable one; an empty
    value counts as absent (RFC 6749 §3.1)."""

    values: dict[str, str]
    repeated: frozenset[str] = field(default_factory=frozenset)
    all_values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def get_all(self, name: str) -> list[str]:
        return self.all_values.get(name, [])


_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _shown(name: str) -> str:
    # A page must not display text an attacker chose (a parameter named like a warning).
    return name if _NAME.match(name) else "(unprintable name)"


async def read_form(request: web.Request) -> Mapping[str, object]:
    """The request's form body; UnreadableRequest for an unknown charset or bytes that do not
    decode (aiohttp raises LookupError / UnicodeDecodeError for those)."""
    try:
        return await request.post()
    except (ValueError, LookupError) as exc:  # UnicodeDecodeError is a ValueError
        raise UnreadableRequest("The request body is not valid form data") from exc


async def read_parameters(request: web.Request) -> Parameters:
    """The request's parameters; raises UnreadableRequest for a body that is not a form."""
    source: Mapping[str, object]
    if request.method == "POST":
        if request.content_type != FORM:
            raise UnreadableRequest(f"The request body must be {FORM}")
        source = await read_form(request)
    else:
        source = request.query
    if len(source) > MAX_PARAMETERS:
        raise UnreadableRequest("Too many parameters")
    values: dict[str, str] = {}
    all_values: dict[str, list[str]] = {}
    repeated: set[str] = set()
    for name, value in source.items():  # repeated names come once per value
        if not isinstance(value, str):
            raise UnreadableRequest(f"Parameter {_shown(name)} must be a plain value")
        if len(value) > MAX_VALUE:
            raise UnreadableRequest(f"Parameter {_shown(name)} is too long")
        if not value:
            continue
        if name in values and name not in REPEATABLE:
            repeated.add(name)
        values[name] = value
        all_values.setdefault(name, []).append(value)
    return Parameters(values, frozenset(repeated), all_values)
