"""The errors of client metadata validation (RFC 7591 §3.2.2)."""

from __future__ import annotations

from typing import Final, NoReturn

__all__ = ["INVALID_CLIENT_METADATA", "INVALID_REDIRECT_URI", "ClientMetadataError", "fail"]

# RFC 7591 §3.2.2 error codes.
INVALID_REDIRECT_URI: Final = "invalid_redirect_uri"
INVALID_CLIENT_METADATA: Final = "invalid_client_metadata"


class ClientMetadataError(Exception):
    """Client metadata refused with an RFC 7591 §3.2.2 error.

    `error` is the RFC's code, `description` a sentence for `error_description` that starts
    with the offending member (`redirect_uris[1]: fragment not allowed`), `field` that
    member's name (None when the body as a whole is wrong).
    """

    error: str
    description: str
    field: str | None

    def __init__(self, error: str, description: str, field: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.field = field


def fail(where: str, message: str, field: str, error: str = INVALID_CLIENT_METADATA) -> NoReturn:
    """Raise ClientMetadataError `error` for member `field`, described as `where: message`."""
    raise ClientMetadataError(error, f"{where}: {message}", field)
