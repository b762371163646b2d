"""The tenant owner's view of clients: `/api/v2/clients` (Auth0 Management API shape).

Updates go through the same client-metadata rules as registration (one schema serves
`POST /oidc/register`, RFC 7592 `PUT` and this API); the owner is not bound by the open-
registration policy, and may mark a client first-party.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oidc_common.client_metadata import (
    ClientMetadataError,
    is_client_metadata_member,
    uses_client_secret,
    validate_client_metadata,
)
from oidc_common.errors import ManagementApiError, json_response
from oidc_common.events import CLIENT_DELETED, CLIENT_UPDATED
from oidc_common.management_auth import requires_scope
from oidc_common.management_requests import (
    bool_query,
    collection_routes,
    int_query,
    invalid_body,
    paged_body,
    read_json,
)
from oidc_common.mongo import Document
from oidc_common.tenancy import TENANT

from ..clients.representation import management_view
from ..error_formats import management_metadata_error
from ..resources import CLIENT_CAP, CLIENT_EVENTS, CLIENTS

MAX_PER_PAGE = 100


def _not_found() -> ManagementApiError:
    return ManagementApiError(404, "The client does not exist", "inexistent_client")


def _view(doc: Document) -> dict[str, Any]:
    return management_view(doc)


@requires_scope("read:clients")
async def list_clients(request: web.Request) -> web.Response:
    page = int_query(request, "page", 0, 10_000)
    per_page = int_query(request, "per_page", 50, MAX_PER_PAGE, minimum=1)
    include_totals = bool_query(request, "include_totals") or False
    first_party = bool_query(request, "is_first_party")
    docs, total = await request.app[CLIENTS].page(request[TENANT].id, page, per_page, first_party)
    clients = [_view(doc) for doc in docs]
    return json_response(paged_body("clients", clients, page, per_page, total, include_totals))


async def _live_client(request: web.Request) -> Document:
    doc = await request.app[CLIENTS].get(request[TENANT].id, request.match_info["client_id"])
    if doc is None or doc.get("reaped_at"):
        raise _not_found()
    return doc


@requires_scope("read:clients")
async def get_client(request: web.Request) -> web.Response:
    return json_response(_view(await _live_client(request)))


@requires_scope("update:clients")
async def patch_client(request: web.Request) -> web.Response:
    doc = await _live_client(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not body:
        raise invalid_body("Request body must be a non-empty JSON object")
    unknown = sorted(k for k in body if k != "is_first_party" and not is_client_metadata_member(k))
    if unknown:
        raise invalid_body(f"Payload validation error: unknown field '{unknown[0]}'")
    extra: dict[str, Any] = {}
    if "is_first_party" in body:
        if not isinstance(body["is_first_party"], bool):
            raise invalid_body("Payload validation error: 'is_first_party' must be a boolean")
        extra["is_first_party"] = body["is_first_party"]
    changes = {k: v for k, v in body.items() if k != "is_first_party"}
    current: dict[str, Any] | None = doc.get("metadata")
    if changes and current is None:
        raise invalid_body(
            "This client was not registered with client metadata; only "
            "'is_first_party' can be changed here"
        )
    metadata = current
    if changes and current is not None:
        merged = {**current, **changes}
        merged = {k: v for k, v in merged.items() if v is not None}
        try:
            metadata = validate_client_metadata(merged)
        except ClientMetadataError as exc:
            raise management_metadata_error(exc) from exc
        had_secret = uses_client_secret(current.get("token_endpoint_auth_method"))
        needs_secret = uses_client_secret(metadata["token_endpoint_auth_method"])
        if needs_secret and not had_secret:
            # This API cannot hand out a secret; the client can, through RFC 7592 PUT.
            raise invalid_body(
                "Payload validation error: a client without a secret cannot be moved to a "
                "secret method here; the client may do it with its registration access token "
                "(RFC 7592)"
            )
        if not needs_secret:
            extra["client_secret_hash"] = None  # none or private_key_jwt: no secret to keep
    clients = request.app[CLIENTS]
    if metadata is not None:
        updated = await clients.replace_metadata(doc["tenant_id"], doc["_id"], metadata, extra)
    else:
        await clients.set_fields(doc["tenant_id"], doc["_id"], extra)
        updated = await clients.get(doc["tenant_id"], doc["_id"])
    if updated is None:
        raise _not_found()
    await request.app[CLIENT_EVENTS].announce(CLIENT_UPDATED, doc["tenant_id"], doc["_id"])
    return json_response(_view(updated))


@requires_scope("delete:clients")
async def delete_client(request: web.Request) -> web.Response:
    doc = await _live_client(request)
    if not await request.app[CLIENTS].delete(doc["tenant_id"], doc["_id"]):
        raise _not_found()
    if doc.get("dynamic"):
        await request.app[CLIENT_CAP].release(doc["tenant_id"])
    await request.app[CLIENT_EVENTS].announce(CLIENT_DELETED, doc["tenant_id"], doc["_id"], "owner")
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    handlers = {"list": list_clients, "get": get_client, "update": patch_client}
    return collection_routes("/api/v2/clients", "client_id", {**handlers, "delete": delete_client})
