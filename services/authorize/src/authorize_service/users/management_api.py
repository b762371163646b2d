"""`/api/v2/users`: the tenant owner's view of users, in the Auth0 Management API's shape.

`POST` creates a database-connection user (`Username-Password-Authentication`), `GET` lists
or searches (`page`, `per_page`, `include_totals`, `email`, `q`), `GET`/`DELETE /{id}` read
and remove one. Scopes `create:users`, `read:users`, `delete:users`. The answer never holds
the password or its hash.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from oidc_common.errors import ManagementApiError, json_response
from oidc_common.management_auth import requires_scope
from oidc_common.management_requests import (
    bool_member,
    bool_query,
    collection_routes,
    int_query,
    invalid_body,
    invalid_query,
    paged_body,
    read_json_object,
    reject_unknown_members,
    require_members,
    string_member,
)
from oidc_common.tenancy import TENANT

from ..resources import GRANTS, PASSWORDS, REFRESH_TOKENS, USERS
from .accounts import MAX_NAME_LENGTH, InvalidNameError
from .accounts import create_user as create_user_account
from .emails import InvalidEmailError
from .password_policy import WeakPasswordError
from .repository import CONNECTION, MAX_SEARCH_RESULTS, USER_ID_PREFIX, DuplicateEmailError, User
from .search import UserQueryError

MAX_PER_PAGE = 100
MAX_BODY_CHARS = 64 * 1024  # no string member can be longer than the body limit
CREATE_MEMBERS = ("email", "password", "connection", "email_verified", "name")


def _timestamp(value: dt.datetime) -> str:
    """Auth0's form: UTC, milliseconds, `Z` (`2024-05-01T12:00:00.000Z`)."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def user_view(user: User) -> dict[str, Any]:
    """The Management API's user: Auth0's field names; built field by field so that the
    password hash can never slip in."""
    return {
        "user_id": user.user_id,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "created_at": _timestamp(user.created_at),
        "updated_at": _timestamp(user.updated_at),
        "identities": [
            {
                "connection": user.connection,
                "provider": "auth0",
                "user_id": user.user_id.removeprefix(USER_ID_PREFIX),
                "isSocial": False,
            }
        ],
    }


def _not_found() -> ManagementApiError:
    return ManagementApiError(404, "The user does not exist.", "inexistent_user")


@requires_scope("create:users")
async def create_user(request: web.Request) -> web.Response:
    """`POST /api/v2/users`: 201 with the user; 400 for a malformed or weak request, 409 when
    the email is taken (in any letter case)."""
    body = await read_json_object(request)
    reject_unknown_members(body, CREATE_MEMBERS)
    # Types first, then presence, then meaning: each error names one property.
    email = string_member(body, "email", max_length=1000)
    # Its length is the password policy's to judge (below), with Auth0's error names.
    password = string_member(
        body, "password", min_length=0, max_length=MAX_BODY_CHARS, allow_controls=True
    )
    connection = string_member(body, "connection", max_length=1000)
    email_verified = bool_member(body, "email_verified")
    name = string_member(body, "name", max_length=MAX_NAME_LENGTH)
    require_members(body, ("connection", "email", "password"))
    assert email is not None and connection is not None and password is not None
    if connection != CONNECTION:
        raise ManagementApiError(400, "The connection does not exist.", "inexistent_connection")
    try:
        user = await create_user_account(
            request.app[USERS],
            request.app[PASSWORDS],
            request[TENANT].id,
            email,
            password,
            email_verified=bool(email_verified),
            name=name,
        )
    except (InvalidEmailError, InvalidNameError) as exc:
        raise invalid_body(str(exc)) from exc
    except WeakPasswordError as exc:
        raise ManagementApiError(400, str(exc), "invalid_password") from exc
    except DuplicateEmailError as exc:
        # Auth0's answer for a second user with the same email on a database connection.
        raise ManagementApiError(409, "The user already exists.", "auth0_idp_error") from exc
    return json_response(user_view(user), status=201)


@requires_scope("read:users")
async def list_users(request: web.Request) -> web.Response:
    """`GET /api/v2/users`: a page of users (oldest first) as an array, or Auth0's envelope
    `{start, limit, length, total, users}` with `include_totals=true`; `email` and `q`
    (`email:"…"` or `user_id:"…"`) narrow it. As Auth0, only the first 1000 results page."""
    page = int_query(request, "page", 0, MAX_SEARCH_RESULTS)
    per_page = int_query(request, "per_page", 50, MAX_PER_PAGE, minimum=1)
    include_totals = bool_query(request, "include_totals") or False
    if (page + 1) * per_page > MAX_SEARCH_RESULTS:
        raise invalid_query(
            f"only the first {MAX_SEARCH_RESULTS} users can be paged through; search with q"
        )
    email = request.query.get("email")
    q = request.query.get("q")
    if email is not None and not email:
        raise invalid_query("'email' must not be empty")
    if q is not None and not q.strip():
        q = None  # Auth0 treats an empty search as no search
    try:
        users, total = await request.app[USERS].list(
            request[TENANT].id, page, per_page, email=email, q=q
        )
    except UserQueryError as exc:
        raise invalid_query(str(exc)) from exc
    views = [user_view(user) for user in users]
    return json_response(paged_body("users", views, page, per_page, total, include_totals))


@requires_scope("read:users")
async def get_user(request: web.Request) -> web.Response:
    """`GET /api/v2/users/{id}`: the user, or 404 `inexistent_user`."""
    user = await request.app[USERS].get(request[TENANT].id, request.match_info["user_id"])
    if user is None:
        raise _not_found()
    return json_response(user_view(user))


@requires_scope("delete:users")
async def delete_user(request: web.Request) -> web.Response:
    """`DELETE /api/v2/users/{id}`: 204, and the consents the user gave and their refresh
    tokens go with them; 404 for an unknown id."""
    tenant_id, user_id = request[TENANT].id, request.match_info["user_id"]
    if not await request.app[USERS].delete(tenant_id, user_id):
        raise _not_found()
    await request.app[GRANTS].delete_user(tenant_id, user_id)
    await request.app[REFRESH_TOKENS].revoke_user(tenant_id, user_id)
    return web.Response(status=204)


def users_routes() -> list[web.RouteDef]:
    """The `/api/v2/users` routes, for the authorize service's application."""
    handlers = {"create": create_user, "list": list_users, "get": get_user}
    return collection_routes("/api/v2/users", "user_id", {**handlers, "delete": delete_user})
