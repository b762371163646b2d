"""A well-known OpenID client library against the gateway: Authlib's OAuth 2.0 / OpenID
Connect client, configured only from the discovery document.

The client is assembled from Authlib's framework-neutral building blocks (`BaseApp`,
`OAuth2Mixin`, `OpenIDMixin`, the requests `OAuth2Session`): the same code its Flask, Django
and Starlette clients run. It reads `/.well-known/openid-configuration`, registers itself at
the advertised `registration_endpoint`, builds the authorization URL with PKCE S256 and a
nonce, the user signs in with Chromium, then Authlib checks `state`, redeems the code with its
registered client authentication and validates the ID token with its own OIDC checks
(signature against `jwks_uri` with the advertised algorithms, `iss`, `aud`, `nonce`, `azp`,
`at_hash`, `exp`/`iat`). Authlib's client is synchronous: it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from authlib.integrations.base_client import (
    BaseApp,
    FrameworkIntegration,
    OAuth2Mixin,
    OpenIDMixin,
)
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import MismatchingStateException
from joserfc.errors import InvalidClaimError
from playwright.async_api import Page

from tests.support.browser import Callback, landed_at, sign_in
from tests.support.gateway import Edge, SignInTenant

TIMEOUT = 10  # seconds, every HTTP request Authlib sends


class DiscoveredClient(OAuth2Mixin, OpenIDMixin, BaseApp):  # type: ignore[misc]
    """Authlib's OpenID client without a web framework (its integrations add only the
    framework's session storage on top of these)."""

    client_cls = OAuth2Session


def discovered_client(discovery_url: str, **kwargs: Any) -> DiscoveredClient:
    return DiscoveredClient(
        FrameworkIntegration("gateway"),
        "gateway",
        server_metadata_url=discovery_url,
        client_kwargs={"default_timeout": TIMEOUT, **kwargs.pop("client_kwargs", {})},
        **kwargs,
    )


def register(discovery_url: str, redirect_uri: str) -> tuple[DiscoveredClient, dict[str, Any]]:
    """Discovery, then RFC 7591 registration at the advertised endpoint; the client Authlib
    then uses: the registered credentials and client authentication method, PKCE S256."""
    metadata = discovered_client(discovery_url).load_server_metadata()
    assert "S256" in metadata["code_challenge_methods_supported"], metadata
    with OAuth2Session(default_timeout=TIMEOUT) as http:
        response = http.post(
            metadata["registration_endpoint"],
            json={
                "client_name": "Authlib client",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            },
            withhold_token=True,
        )
    assert response.status_code == 201, response.text
    registered: dict[str, Any] = response.json()
    client = discovered_client(
        discovery_url,
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        client_kwargs={
            "scope": "openid email profile",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": registered["token_endpoint_auth_method"],
            # Authlib's default for revocation is client_secret_basic: use the registered one.
            "revocation_endpoint_auth_method": registered["token_endpoint_auth_method"],
        },
    )
    return client, registered


def finish(
    client: DiscoveredClient, authorization: dict[str, Any], callback_url: str, landed: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What the client does on its callback: the code exchange (Authlib checks `state` and
    sends the PKCE verifier), the ID token validation with all of Authlib's OIDC checks, and
    `/userinfo` with the access token."""
    metadata = client.load_server_metadata()
    token = client.fetch_access_token(
        redirect_uri=callback_url,
        authorization_response=landed,
        state=authorization["state"],
        code_verifier=authorization["code_verifier"],
    )
    claims = client.parse_id_token(
        token,
        nonce=authorization["nonce"],
        # Authlib checks only `iss` by default: ask for the audience check too.
        claims_options={
            "iss": {"essential": True, "values": [metadata["issuer"]]},
            "aud": {"essential": True, "values": [client.client_id]},
        },
    )
    userinfo = client.userinfo(token=token)
    return dict(token), dict(claims), dict(userinfo)


def revoke_and_introspect(
    client: DiscoveredClient, token: dict[str, Any]
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """Authlib's RFC 7662 and RFC 7009 clients, at the endpoints discovery advertises, with
    the registered client authentication: introspect, revoke, introspect again."""
    metadata = client.load_server_metadata()
    with client._get_oauth_client() as session:
        before = session.introspect_token(
            metadata["introspection_endpoint"], token=token["access_token"]
        )
        revoked = session.revoke_token(
            metadata["revocation_endpoint"],
            token=token["access_token"],
            token_type_hint="access_token",
        )
        after = session.introspect_token(
            metadata["introspection_endpoint"], token=token["access_token"]
        )
    assert before.status_code == revoked.status_code == after.status_code == 200, (
        before.text,
        revoked.text,
        after.text,
    )
    assert after.json() == {"active": False}, after.text
    return dict(before.json()), revoked.status_code, dict(after.json())


async def test_authlib_registers_from_discovery_and_signs_in_with_code_pkce(
    edge: Edge, tenant: SignInTenant, page: Page, loopback_callback: Callback
) -> None:
    discovery_url = f"{edge.origin}/.well-known/openid-configuration"
    client, registered = await asyncio.to_thread(register, discovery_url, loopback_callback.url)
    authorization: dict[str, Any] = await asyncio.to_thread(
        client.create_authorization_url, redirect_uri=loopback_callback.url
    )
    query = dict(parse_qsl(urlsplit(authorization["url"]).query))
    assert query["code_challenge_method"] == "S256" and query["nonce"] == authorization["nonce"]
    assert authorization["url"].startswith(f"{edge.origin}/authorize?")

    await sign_in(page, authorization["url"], tenant.email, tenant.password, "authlib-code-pkce")
    params = await landed_at(page, loopback_callback)
    # RFC 9207: Authlib does not check the `iss` parameter itself; the client does.
    assert params["iss"] == client.load_server_metadata()["issuer"] == edge.issuer, params

    # Authlib's state check is on: the same callback for another request is not redeemed
    # (checked before any token request, so the code stays usable).
    other = {**authorization, "state": authorization["state"] + "x"}
    with pytest.raises(MismatchingStateException):
        await asyncio.to_thread(finish, client, other, loopback_callback.url, page.url)

    token, claims, userinfo = await asyncio.to_thread(
        finish, client, authorization, loopback_callback.url, page.url
    )
    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token, token
    assert claims["aud"] in (registered["client_id"], [registered["client_id"]]), claims
    assert claims["nonce"] == authorization["nonce"] and claims["email"] == tenant.email, claims
    assert userinfo["sub"] == claims["sub"] and userinfo["email"] == tenant.email, userinfo
    assert userinfo["name"] == "Ada Lovelace", userinfo

    # The same ID token fails Authlib's checks for another nonce or another audience.
    with pytest.raises(InvalidClaimError, match="nonce"):
        await asyncio.to_thread(client.parse_id_token, token, nonce="another-nonce")
    with pytest.raises(InvalidClaimError, match="aud"):
        await asyncio.to_thread(
            client.parse_id_token,
            token,
            nonce=authorization["nonce"],
            claims_options={"aud": {"essential": True, "values": ["another-client"]}},
        )

    # Issue 22: Authlib's revocation and introspection clients (RFC 7009, RFC 7662).
    before, revoked, _ = await asyncio.to_thread(revoke_and_introspect, client, token)
    assert before["active"] is True and before["sub"] == claims["sub"], before
    assert before["client_id"] == registered["client_id"] and revoked == 200
    with pytest.raises(requests.HTTPError, match="401"):  # /userinfo knows it was revoked
        await asyncio.to_thread(client.userinfo, token=token)
