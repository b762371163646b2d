"""Event envelopes carried over the broker (`tenant.settings.updated`, `client.*`)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

TENANT_SETTINGS_UPDATED = "tenant.settings.updated"
CLIENT_REGISTERED = "client.registered"
CLIENT_UPDATED = "client.updated"
CLIENT_DELETED = "client.deleted"
# A login session ended (logout); `data`: `sid`, `sub`, `clients` (the client ids it signed in to).
SESSION_ENDED = "session.ended"


class EventDecodeError(ValueError):
    """A message body is not a well-formed event envelope."""


@dataclass(frozen=True)
class Event:
    type: str
    tenant_id: str
    data: dict[str, Any]
    version: int = 0
    occurred_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "tenant_id": self.tenant_id,
                "version": self.version,
                "occurred_at": self.occurred_at,
                "data": self.data,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Event:
        try:
            raw = json.loads(body)
            if not isinstance(raw, dict):
                raise TypeError("envelope is not an object")
            event = cls(
                type=str(raw["type"]),
                tenant_id=str(raw["tenant_id"]),
                data=dict(raw["data"]),
                version=int(raw.get("version", 0)),
                occurred_at=float(raw.get("occurred_at", 0.0)),
                id=str(raw.get("id", "")),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise EventDecodeError(str(exc)) from exc
        return event
