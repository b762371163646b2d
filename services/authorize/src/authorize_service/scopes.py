"""Scope narrowing (RFC 6749 §3.3): a client gets at most what it was granted."""

from __future__ import annotations

import re
from collections.abc import Sequence

from oidc_common.errors import OAuthError

# RFC 6749 §3.3: scope-token = 1*NQCHAR; only such tokens are echoed in an error_description.
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


def parse_scope(value: str | None) -> list[str]:
    """Scope tokens, space separated (RFC 6749 §3.3), without duplicates, in request order."""
    if value is None:
        return []
    return list(dict.fromkeys(token for token in value.split(" ") if token))


def narrow_scope(granted: Sequence[str], requested: str | None) -> list[str]:
    """All granted scopes when none are requested; otherwise the requested ones, each of which
    must have been granted (else `invalid_scope`, RFC 6749 §5.2)."""
    if requested is None:
        return list(dict.fromkeys(granted))
    wanted = parse_scope(requested)
    allowed = set(granted)
    refused = [token for token in wanted if token not in allowed]
    if refused:
        shown = " ".join(token for token in refused if _SCOPE_TOKEN.match(token))
        raise OAuthError(
            "invalid_scope",
            f"Scope not granted to this client: {shown}" if shown else "Scope not granted",
        )
    return wanted
