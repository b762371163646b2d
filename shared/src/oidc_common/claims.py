"""Reading JWT claims whose shape the JSON does not guarantee."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["audiences"]


def audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The `aud` claim as the strings it names (RFC 7519 §4.1.3: a string or an array of
    strings); anything else names nothing, never an error."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(item for item in aud if isinstance(item, str))
    return ()
