"""The subset of Auth0's user-search syntax (`q`, Lucene query string) this service answers.

One clause, `field:value`, on `email` (case-insensitive, as emails are stored) or `user_id`;
the value quoted (`email:"jane@example.com"`, with `\\"` and `\\\\` escapes) or a bare term
(`email:jane@example.com`). Anything else (other fields, `AND`/`OR`, ranges, wildcards,
fuzzy or boosted terms) is refused rather than half-understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_LENGTH = 600
SEARCHABLE_FIELDS = ("email", "user_id")

_QUOTED = r'"(?P<quoted>(?:[^"\\]|\\["\\])*)"'
# A bare Lucene term: no whitespace and none of its operators or special characters.
_BARE = r'(?P<bare>[^\s"\\():\[\]{}^~*?!/+\-&|][^\s"\\():\[\]{}^~*?!/&]*)'
_CLAUSE = re.compile(rf"\s*(?P<field>[a-z_]+):(?:{_QUOTED}|{_BARE})\s*")
# `|` is a Lucene operator in a bare term, but Auth0's user ids carry one: `auth0|…`.
_BARE_USER_ID = re.compile(r"\s*user_id:(?P<bare>[A-Za-z0-9_.\-]+\|[A-Za-z0-9_.\-]+)\s*")


class UserQueryError(ValueError):
    """`q` is outside the supported syntax; the message says what is supported."""


@dataclass(frozen=True)
class UserQuery:
    """One `field:value` clause of a user search."""

    field: str
    value: str


def parse_user_query(q: str) -> UserQuery:
    """Parse `q`; raises `UserQueryError` for anything but one `email:` or `user_id:` clause."""
    if len(q) > MAX_QUERY_LENGTH:
        raise UserQueryError(f"'q' must be at most {MAX_QUERY_LENGTH} characters")
    match = _CLAUSE.fullmatch(q) or _BARE_USER_ID.fullmatch(q)
    if match is None:
        raise UserQueryError(
            '\'q\' supports one clause, email:"address" or user_id:"id" (no operators, '
            "ranges or wildcards)"
        )
    field = "user_id" if match.re is _BARE_USER_ID else match["field"]
    if field not in SEARCHABLE_FIELDS:
        raise UserQueryError(f"'q' cannot search the field {field!r}: only email and user_id")
    quoted = match.groupdict().get("quoted")
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match["bare"]
    if not value:
        raise UserQueryError(f"'q' has an empty {field} value")
    return UserQuery(field, value)
