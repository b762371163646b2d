"""`metadata_document_client`: the one entry point for `/authorize`, the interaction pages and
the token endpoint."""

from __future__ import annotations

import logging

from aiohttp import web
from redis.exceptions import RedisError

from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.settings_cache import SettingsUnavailable
from oidc_common.tenancy import TENANT

from ..registered_clients import RegisteredClient
from ..resources import CLIENT_ID_METADATA, TENANT_SETTINGS
from .errors import MetadataDocumentError
from .urls import looks_like_document_url, parse_client_id_url

log = logging.getLogger(__name__)

UNAVAILABLE = "Information about this application cannot be checked right now; try again later."


async def cimd_policy(request: web.Request) -> RegistrationPolicy | None:
    """The tenant's policy when it allows Client ID Metadata Documents; None when it does not,
    or when its settings cannot be read (fail closed: nothing is fetched)."""
    try:
        snapshot = await request.app[TENANT_SETTINGS].read(request[TENANT].id)
    except SettingsUnavailable as exc:
        log.warning("tenant settings unavailable; no metadata documents", extra={"error": str(exc)})
        return None
    if snapshot is None:
        return None
    policy = RegistrationPolicy.from_settings(snapshot.settings)
    return policy if policy.client_id_metadata_documents else None


async def metadata_document_client(request: web.Request, client_id: str) -> RegisteredClient | None:
    """The client whose Client ID Metadata Document `client_id` names, for the request's
    tenant (draft-ietf-oauth-client-id-metadata-document-02 §3-§5): public (`none`),
    third-party, `dynamic`, with `document_host` set.

    None when `client_id` is not an https URL or the tenant does not allow metadata documents
    (the caller then treats it as an unknown client; nothing is fetched). Raises
    MetadataDocumentError, with a sentence for the user, when the URL, the tenant's host
    allow-list, the fetch or the document refuses it, or the cache cannot be reached."""
    if not looks_like_document_url(client_id):
        return None
    policy = await cimd_policy(request)
    if policy is None:
        return None
    url = parse_client_id_url(client_id)
    allowed = policy.client_id_metadata_hosts
    if allowed and url.host not in allowed:
        raise MetadataDocumentError(
            f"Applications whose information is published by {url.host} are not accepted here."
        )
    try:
        return await request.app[CLIENT_ID_METADATA].client(request[TENANT].id, url, policy)
    except RedisError as exc:  # fail closed: without the cache nothing is fetched
        log.warning("metadata document cache unavailable", extra={"error": str(exc)})
        raise MetadataDocumentError(UNAVAILABLE) from None
