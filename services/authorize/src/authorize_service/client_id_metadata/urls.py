"""Client Identifier URLs (draft-ietf-oauth-client-id-metadata-document-02 §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from oidc_common.uris import UriError, parse_uri

from .errors import MetadataDocumentError

# The token endpoint reads a client_id of at most 256 characters (RFC 6749 Appendix A.1 as
# tokens/client_auth.py applies it); a longer URL could start a sign-in that can never finish.
MAX_URL_LENGTH: Final = 256
_DEFAULT_HTTPS_PORT: Final = 443


@dataclass(frozen=True)
class ClientIdUrl:
    """A `client_id` that passed the §3 rules. `url` is exactly what the client sent (it is
    compared by simple string comparison, RFC 3986 §6.2.1, never normalised); `host` is
    lowercase without IPv6 brackets."""

    url: str
    host: str
    port: int

    @property
    def connects_to(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def origin(self) -> str:
        """`host:port`, what a failure of the server itself is remembered under."""
        return f"{self.host}:{self.port}"


def looks_like_document_url(client_id: str) -> bool:
    """Whether `client_id` claims to be a Client Identifier URL (starts with `https://`, any
    case). Generated client ids never do (draft §7.1), so anything else is an ordinary id."""
    return client_id[:8].lower() == "https://"


def parse_client_id_url(client_id: str) -> ClientIdUrl:
    """Check a Client Identifier URL (draft §3): `https`, no userinfo, a path without `.` or
    `..` segments, no fragment; a port and a query are allowed. Raises MetadataDocumentError
    naming the rule broken."""

    def refuse(reason: str) -> MetadataDocumentError:
        return MetadataDocumentError(
            f"The client_id is not a valid Client Identifier URL: {reason}."
        )

    try:
        parsed = parse_uri(client_id, MAX_URL_LENGTH)
    except UriError as exc:
        raise refuse(str(exc)) from None
    if parsed.scheme != "https" or not client_id.startswith("https://"):
        raise refuse("it must start with https://")
    if parsed.host is None:
        raise refuse("it must name a host")
    if "#" in client_id:
        raise refuse("it must not contain a fragment")
    if not parsed.path:
        raise refuse("it must contain a path")
    # `%2e` is a dot too (RFC 3986 §2.3): a server may normalise it back into a dot segment.
    if any(unquote(segment) in {".", ".."} for segment in parsed.path.split("/")):
        raise refuse("its path must not contain . or .. segments")
    return ClientIdUrl(client_id, parsed.host, parsed.port or _DEFAULT_HTTPS_PORT)
