"""Client configuration endpoint (RFC 7592): read, update and delete one's own registration.

Authenticated by the registration access token issued at registration. A missing, wrong,
or another client's token, and an unknown or deleted client, all get the same 401
`invalid_token`, so the endpoint reveals nothing about which client ids exist.
"""

from __future__ import annotations

from aiohttp import web

from oidc_common.client_metadata import ClientMetadataError, uses_client_secret
from oidc_common.credentials import hash_secret, new_secret, verify_secret
from oidc_common.errors import NO_STORE, OAuthError, json_response
from oidc_common.events import CLIENT_DELETED, CLIENT_UPDATED
from oidc_common.locks import LockBusy, redis_lock
from oidc_common.mongo import Document
from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.service import REDIS, SETTINGS
from oidc_common.tenancy import ORIGIN, TENANT

from ..clients.representation import client_information
from ..error_formats import oauth_metadata_error, read_oauth_json
from ..resources import CLIENT_CAP, CLIENT_EVENTS, CLIENTS, GATE
from ..settings_gate import self_management_policy
from .update_request import validate_update_request

_INVALID_TOKEN = OAuthError(
    "invalid_token",
    "The registration access token is invalid",
    status=401,
    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
)


async def _policy(request: web.Request) -> RegistrationPolicy:
    return self_management_policy(await request.app[GATE].decide(request[TENANT].id))


def _presented_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _authenticated_client(request: web.Request) -> Document:
    token = _presented_token(request)
    if not token:
        raise OAuthError(
            "invalid_token",
            "A registration access token is required",
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not (token.isascii() and token.isprintable()):  # RFC 6750 §2.1: never one of ours
        raise _INVALID_TOKEN
    doc = await request.app[CLIENTS].get(request[TENANT].id, request.match_info["client_id"])
    stored = doc.get("registration_access_token_hash") if doc else None
    # verify_secret is constant-time and False for a missing hash: one path for every failure.
    if doc is None or doc.get("reaped_at") or not verify_secret(token, stored):
        raise _INVALID_TOKEN
    return doc


async def read_client(request: web.Request) -> web.Response:
    await _policy(request)
    doc = await _authenticated_client(request)
    # RFC 7592 §3: the response carries the (unchanged) registration access token; the
    # client secret exists only as a hash and is not repeated.
    body = client_information(
        doc, request[ORIGIN], registration_access_token=_presented_token(request)
    )
    return json_response(body, headers=NO_STORE)


async def update_client(request: web.Request) -> web.Response:
    policy = await _policy(request)
    body = await read_oauth_json(request)
    settings = request.app[SETTINGS]
    lock = f"{settings.redis_prefix}lock:client:{request.match_info['client_id']}"
    try:
        # Authenticate and update as one step: two PUTs with the same token must not both
        # rotate it (the loser's new token would be lost with the client holding it).
        async with redis_lock(request.app[REDIS], lock):
            return await _update_locked(request, policy, body)
    except LockBusy as exc:
        raise OAuthError(
            "temporarily_unavailable",
            "Another update of this client is in progress",
            status=503,
            headers={"Retry-After": "1"},
        ) from exc


async def _update_locked(
    request: web.Request, policy: RegistrationPolicy, body: object
) -> web.Response:
    doc = await _authenticated_client(request)
    try:
        metadata, presented_secret = validate_update_request(
            body, doc["_id"], policy.metadata_policy()
        )
    except ClientMetadataError as exc:
        raise oauth_metadata_error(exc) from exc
    if presented_secret is not None and not verify_secret(
        presented_secret, doc.get("client_secret_hash")
    ):
        raise OAuthError("invalid_client_metadata", "client_secret does not match this client")

    extra: dict[str, object] = {}
    new_client_secret: str | None = None
    if not uses_client_secret(metadata["token_endpoint_auth_method"]):
        extra["client_secret_hash"] = None  # none or private_key_jwt: no secret to keep
    elif not doc.get("client_secret_hash"):
        # A client coming to a secret method needs its first secret.
        new_client_secret = new_secret()
        extra["client_secret_hash"] = hash_secret(new_client_secret)
    # RFC 7592 §2.2: the server may rotate the registration access token; we always do.
    access_token = new_secret()
    extra["registration_access_token_hash"] = hash_secret(access_token)
    updated = await request.app[CLIENTS].replace_metadata(
        doc["tenant_id"],
        doc["_id"],
        metadata,
        extra,
        expect={"registration_access_token_hash": doc["registration_access_token_hash"]},
    )
    if updated is None:  # deleted or reaped meanwhile
        raise _INVALID_TOKEN
    await request.app[CLIENT_EVENTS].announce(CLIENT_UPDATED, doc["tenant_id"], doc["_id"])
    answer = client_information(
        updated,
        request[ORIGIN],
        client_secret=new_client_secret,
        registration_access_token=access_token,
    )
    return json_response(answer, headers=NO_STORE)


async def delete_client(request: web.Request) -> web.Response:
    await _policy(request)
    doc = await _authenticated_client(request)
    if not await request.app[CLIENTS].delete(doc["tenant_id"], doc["_id"]):
        raise _INVALID_TOKEN
    await request.app[CLIENT_CAP].release(doc["tenant_id"])
    await request.app[CLIENT_EVENTS].announce(CLIENT_DELETED, doc["tenant_id"], doc["_id"], "self")
    return web.Response(status=204, headers=NO_STORE)
