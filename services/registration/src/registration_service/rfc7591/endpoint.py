"""`POST /oidc/register`: open dynamic client registration (RFC 7591 §3, OIDC DCR §3).

The handler is the sequence of its checks: the tenant's gate (one settings snapshot
decides the whole request), the JSON body, the Idempotency-Key, the client metadata, then
the per-IP rate limit and the tenant's client cap, in one Redis round trip for a request
that is about to store a client (`abuse/admission.py`); then the client is stored and its
information returned once, with its secrets. Every attempt spends a rate-limit token, a
refused or replayed one included, and over the limit 429 is the answer whatever else was
wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from typing import Any

from aiohttp import web

from oidc_common.address_buckets import client_key
from oidc_common.client_metadata import (
    ClientMetadataError,
    uses_client_secret,
    validate_client_metadata,
)
from oidc_common.credentials import hash_secret, new_client_id, new_secret
from oidc_common.errors import NO_STORE, OAuthError, json_response
from oidc_common.events import CLIENT_DELETED, CLIENT_REGISTERED
from oidc_common.locks import claim_once
from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.service import REDIS, SETTINGS
from oidc_common.tenancy import ORIGIN, TENANT

from ..abuse.rate_limit import RateDecision
from ..clients.repository import metadata_fields, never_used_filter
from ..clients.representation import client_information
from ..error_formats import oauth_metadata_error, read_oauth_json
from ..events.client_events import JournalEntry
from ..idempotency import Replay, fingerprint, validate_key
from ..resources import ADMITTER, CLIENT_CAP, CLIENT_EVENTS, CLIENTS, GATE, IDEMPOTENCY
from ..settings_gate import registration_policy, unavailable

log = logging.getLogger(__name__)

EVICTION_CANDIDATES = 16


async def check_gate(request: web.Request) -> RegistrationPolicy:
    # Fail closed: without the flag, registration is not open.
    return registration_policy(await request.app[GATE].decide(request[TENANT].id))


class CapSlot:
    """Whether this request holds a place under the client cap that no client owns yet, and
    whether its `client.registered` entry was journaled with the place (the fast path)."""

    def __init__(self, held: bool, journaled: bool) -> None:
        self.held = held
        self.journaled = journaled


def _rate_scope(
    request: web.Request, policy: RegistrationPolicy, software_id: str | None = None
) -> tuple[str, str]:
    """The rate limit's bucket: per tenant and client address, and per `software_id` too when
    the tenant says so (platforms registering many clients from one egress address). The
    software_id is self-asserted, so that mode trades the per-address limit for the cap on
    live clients (`max_clients`), which still bounds what one address can create."""
    bucket = client_key(request[ORIGIN].client_ip)
    if policy.rate_limit_by_software_id and software_id:
        bucket += "|software:" + hashlib.sha256(software_id.encode()).hexdigest()[:24]
    return f"register:{request[TENANT].id}", bucket


def _check_allowed(decision: RateDecision) -> None:
    if not decision.allowed:
        raise OAuthError(
            "too_many_requests",
            "Too many registration requests from this address; retry later",
            status=429,
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )


async def spend_token(request: web.Request, policy: RegistrationPolicy) -> None:
    """The rate limit for an attempt that stores no client (its software_id unknown or
    untrusted: the address's own bucket)."""
    scope, client = _rate_scope(request, policy)
    try:
        decision = await request.app[ADMITTER].take_token(
            scope,
            client,
            requests=policy.rate_limit_requests,
            window_seconds=policy.rate_limit_window_seconds,
        )
    except Exception as exc:  # Redis down: the limit cannot be enforced, so refuse
        raise unavailable() from exc
    _check_allowed(decision)


async def admit(
    request: web.Request,
    policy: RegistrationPolicy,
    registered: JournalEntry,
    software_id: str | None = None,
) -> CapSlot:
    """The rate limit for a registration about to store a client, and a place under the
    cap with it when one is free (its `registered` entry journaled then)."""
    scope, client = _rate_scope(request, policy, software_id)
    try:
        admission = await request.app[ADMITTER].admit(
            scope,
            client,
            request[TENANT].id,
            requests=policy.rate_limit_requests,
            window_seconds=policy.rate_limit_window_seconds,
            max_clients=policy.max_clients,
            journal_entry=registered.member,
        )
    except Exception as exc:  # Redis down: the limit cannot be enforced, so refuse
        raise unavailable() from exc
    _check_allowed(admission.rate)
    return CapSlot(admission.slot_reserved, journaled=admission.slot_reserved)


def check_metadata(body: Any, policy: RegistrationPolicy) -> dict[str, Any]:
    try:
        return validate_client_metadata(body, policy.metadata_policy())
    except ClientMetadataError as exc:
        raise oauth_metadata_error(exc) from exc


async def reserve_slot(request: web.Request, policy: RegistrationPolicy, slot: CapSlot) -> None:
    """Take a place under the tenant's cap, evicting a never-used client before refusing."""
    if slot.held:
        return
    clients = request.app[CLIENTS]
    cap = request.app[CLIENT_CAP]
    tenant_id = request[TENANT].id

    async def count() -> int:
        return await clients.count_dynamic(tenant_id)

    if await cap.reserve(tenant_id, policy.max_clients, count):
        slot.held = True
        return
    # Concurrent registrations race for the same oldest candidates: try a few.
    redis = request.app[REDIS]
    prefix = request.app[SETTINGS].redis_prefix
    for client_id in await clients.never_used(tenant_id, EVICTION_CANDIDATES):
        # One evictor per candidate: the database's conditional update alone may not be
        # atomic (FerretDB), and a double eviction would free two slots for one client.
        if not await claim_once(redis, f"{prefix}evicting:{client_id}"):
            continue
        if await clients.reap(client_id, still_matching=never_used_filter(tenant_id)):
            await cap.release(tenant_id)
            await request.app[CLIENT_EVENTS].announce(
                CLIENT_DELETED, tenant_id, client_id, "evicted"
            )
            if await cap.reserve(tenant_id, policy.max_clients, count):
                slot.held = True
                return
            # A concurrent registration took the place this eviction freed: evict another.
    if not await cap.reserve(tenant_id, policy.max_clients, count):
        raise OAuthError(
            "access_denied",
            "This tenant has reached its limit of dynamically registered clients",
            status=403,
        )
    slot.held = True


async def create_client(
    request: web.Request, metadata: dict[str, Any], slot: CapSlot, registered: JournalEntry
) -> tuple[dict[str, Any], int]:
    tenant_id = request[TENANT].id
    client_id = registered.event.client_id
    method = metadata["token_endpoint_auth_method"]
    secret = new_secret() if uses_client_secret(method) else None
    access_token = new_secret()
    now = dt.datetime.now(dt.UTC)
    doc = {
        "_id": client_id,
        "tenant_id": tenant_id,
        "dynamic": True,
        "is_first_party": False,  # every dynamically registered client is third-party
        "client_id_issued_at": int(time.time()),
        "client_secret_hash": hash_secret(secret) if secret else None,
        "registration_access_token_hash": hash_secret(access_token),
        **metadata_fields(metadata),
        "created_at": now,
        "updated_at": now,
        "last_used_at": None,
        "reaped_at": None,
    }
    await request.app[CLIENTS].insert(doc)
    slot.held = False  # the stored client owns the place now
    # A 201 promises the event too: journaled with the place, or now. Else 503: the client
    # is stored but nobody learns its credentials; never used, it is reaped.
    events = request.app[CLIENT_EVENTS]
    if slot.journaled:
        announced = await events.registered(registered)
    else:
        announced = await events.announce(CLIENT_REGISTERED, tenant_id, client_id)
    if not announced:
        raise unavailable()
    body = client_information(
        doc, request[ORIGIN], client_secret=secret, registration_access_token=access_token
    )
    return body, 201


def _respond(status: int, body: dict[str, Any]) -> web.Response:
    return json_response(body, status=status, headers=NO_STORE)


async def store_client(
    request: web.Request, policy: RegistrationPolicy, metadata: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    """Admit the registration (rate limit, cap place), store the client, answer it."""
    registered = request.app[CLIENT_EVENTS].registration(request[TENANT].id, new_client_id())
    slot = await admit(request, policy, registered, metadata.get("software_id"))
    try:
        await reserve_slot(request, policy, slot)
        return await create_client(request, metadata, slot, registered)
    finally:
        if slot.held:  # the client was not stored: its place is free again
            await _hand_back(request)


async def _hand_back(request: web.Request) -> None:
    try:
        await request.app[CLIENT_CAP].release(request[TENANT].id)
    except Exception as exc:  # the counter over-counts by one until the reaper re-seeds it
        log.warning("cap place not handed back", extra={"error": str(exc)})


async def register(request: web.Request) -> web.Response:
    policy = await check_gate(request)
    try:
        body = await read_oauth_json(request)
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None:
            validate_key(idempotency_key)
        metadata = check_metadata(body, policy)
    except Exception:  # refused (or a body that never fully arrived): the attempt counts,
        await spend_token(request, policy)  # and over the limit the answer is 429
        raise
    if idempotency_key is None:
        answer, status = await store_client(request, policy, metadata)
        return _respond(status, answer)

    tenant_id = request[TENANT].id
    store = request.app[IDEMPOTENCY]
    body_fingerprint = fingerprint(body)
    try:
        begun = await store.begin(tenant_id, idempotency_key, body_fingerprint)
    except OAuthError:  # 409 (first attempt still running) or 422 (another body)
        await spend_token(request, policy)
        raise
    if isinstance(begun, Replay):
        await spend_token(request, policy)
        return _respond(begun.status, begun.body)
    try:
        answer, status = await store_client(request, policy, metadata)
    except BaseException:
        # A failed attempt may be retried with the key.
        await store.abandon(tenant_id, idempotency_key, begun)
        raise
    await store.complete(tenant_id, idempotency_key, begun, body_fingerprint, status, answer)
    return _respond(status, answer)
