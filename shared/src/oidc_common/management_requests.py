"""Reading Management API requests the way Auth0 does: JSON bodies checked member by member,
pagination query parameters, and the paged list envelope.

Every failure is a `ManagementApiError` (400, Auth0's shape) naming the member or parameter,
so a malformed request never reaches a handler's logic, let alone a 500.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

from aiohttp import web

from .errors import ManagementApiError
from .json_body import read_json_body
from .text import UNSAFE_TEXT

_DIGITS = re.compile(r"[0-9]{1,6}")
# C0 and C1 controls and DEL: never part of a name, an identifier or a description.


def invalid_body(message: str) -> ManagementApiError:
    """A 400 `invalid_body` error (Auth0's code for a payload that fails validation)."""
    return ManagementApiError(400, message, "invalid_body")


def invalid_query(message: str) -> ManagementApiError:
    """A 400 `invalid_query_string` error (Auth0's code for a bad query parameter)."""
    return ManagementApiError(400, f"Query validation error: {message}", "invalid_query_string")


def _fail(status: int, message: str) -> NoReturn:
    # A wrong Content-Type is a 400 here too: Auth0 answers every unreadable body that way.
    raise invalid_body(message if status == 400 else f"Request body must be JSON ({message})")


async def read_json(request: web.Request) -> Any:
    """The request's body, any JSON value; 400 `invalid_body` for a non-JSON content type or
    invalid JSON."""
    return await read_json_body(request, _fail)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object; 400 `invalid_body` for a non-JSON content type,
    invalid JSON or any other JSON value than an object."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid_body("Payload validation error: the body must be a JSON object")
    return body


def json_type(value: object) -> str:
    """The JSON Schema type name of a parsed JSON value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def reject_unknown_members(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """400 naming the first member (in sorted order) that `allowed` does not contain."""
    known = set(allowed)
    unknown = sorted(name for name in body if name not in known)
    if unknown:
        raise invalid_body(
            f"Payload validation error: 'Additional properties not allowed: {unknown[0]}'."
        )


def require_members(body: Mapping[str, Any], required: Sequence[str]) -> None:
    """400 naming the first of `required` that `body` lacks."""
    for name in required:
        if name not in body:
            raise invalid_body(f"Payload validation error: 'Missing required property: {name}'.")


def wrong_type(name: str, expected: str, value: object) -> ManagementApiError:
    """400 for a member of the wrong JSON type, in Auth0's wording."""
    return invalid_body(
        f"Payload validation error: 'Expected type {expected} but found type "
        f"{json_type(value)}' on property {name}."
    )


def is_storable_text(value: str) -> bool:
    """True when `value` encodes to UTF-8: JSON may carry lone surrogates (`"\\ud800"`),
    which neither MongoDB nor a password hash can take."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def string_member(
    body: Mapping[str, Any],
    name: str,
    *,
    max_length: int,
    min_length: int = 1,
    allow_controls: bool = False,
) -> str | None:
    """The string member `name` (None when absent); 400 when it is another type, too short or
    long (in characters), not encodable as UTF-8, or holds control characters."""
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, str):
        raise wrong_type(name, "string", value)
    if not is_storable_text(value):
        raise invalid_body(f"Payload validation error: {name} is not valid Unicode text.")
    if not min_length <= len(value) <= max_length:
        raise invalid_body(
            f"Payload validation error: {name} must be {min_length} to {max_length} characters."
        )
    if not allow_controls and UNSAFE_TEXT.search(value):
        raise invalid_body(f"Payload validation error: {name} must not contain control characters.")
    return value


def bool_member(body: Mapping[str, Any], name: str) -> bool | None:
    """The boolean member `name` (None when absent); 400 for any other JSON type."""
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise wrong_type(name, "boolean", value)
    return value


def int_member(body: Mapping[str, Any], name: str, minimum: int, maximum: int) -> int | None:
    """The integer member `name` (None when absent); 400 for booleans, fractions, other types
    and values outside `minimum..maximum`."""
    if name not in body:
        return None
    value = body[name]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 3600.0 is the integer 3600
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(name, "integer", value)
    if not minimum <= value <= maximum:
        raise invalid_body(
            f"Payload validation error: {name} must be between {minimum} and {maximum}."
        )
    return value


def int_query(request: web.Request, name: str, default: int, maximum: int, minimum: int = 0) -> int:
    """Query parameter `name` as an integer in `minimum..maximum` (ASCII digits only)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    # ASCII digits only (str.isdigit also accepts "²"), and few of them.
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise invalid_query(f"'{name}' must be an integer {minimum}..{maximum}")
    return int(raw)


def bool_query(request: web.Request, name: str) -> bool | None:
    """Query parameter `name` as `true`/`false`, None when absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw not in {"true", "false"}:
        raise invalid_query(f"'{name}' must be true or false")
    return raw == "true"


def paged_body(
    items_key: str,
    items: list[Any],
    page: int,
    per_page: int,
    total: int,
    include_totals: bool,
) -> object:
    """Auth0's list answer: the bare array, or with `include_totals=true` the envelope
    `{start, limit, length, total, <items_key>}`."""
    if not include_totals:
        return items
    return {
        "start": page * per_page,
        "limit": per_page,
        "length": len(items),
        "total": total,
        items_key: items,
    }


def collection_routes(
    path: str,
    item: str,
    handlers: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
) -> list[web.RouteDef]:
    """The routes of a Management API collection at `path` (e.g. `/api/v2/users`) in Auth0's
    layout: `create` and `list` on the collection, `get`, `update` and `delete` on
    `{path}/{item}`; only the handlers given are routed. `item` is the match_info name, with an
    optional pattern (`id:.+`)."""
    methods = {
        "create": ("POST", path),
        "list": ("GET", path),
        "get": ("GET", f"{path}/{{{item}}}"),
        "update": ("PATCH", f"{path}/{{{item}}}"),
        "delete": ("DELETE", f"{path}/{{{item}}}"),
    }
    routes = []
    for name, handler in handlers.items():
        method, route_path = methods[name]
        if method == "GET":  # no implicit HEAD: Auth0 does not answer it
            routes.append(web.get(route_path, handler, allow_head=False))
        else:
            routes.append(web.route(method, route_path, handler))
    return routes
