"""The limits a server puts on client metadata on top of the protocol rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .types import TOKEN_ENDPOINT_AUTH_METHODS

__all__ = ["DEFAULT_POLICY", "MetadataPolicy"]


@dataclass(frozen=True)
class MetadataPolicy:
    """Per-tenant limits applied by `validate_client_metadata`.

    `allowed_auth_methods` narrows TOKEN_ENDPOINT_AUTH_METHODS (the tenant's registration
    policy); `supported_scopes` None accepts any syntactically valid scope token.
    """

    allowed_auth_methods: frozenset[str] = TOKEN_ENDPOINT_AUTH_METHODS
    supported_scopes: frozenset[str] | None = None
    max_redirect_uris: int = 20
    max_uri_length: int = 2000


DEFAULT_POLICY: Final = MetadataPolicy()
