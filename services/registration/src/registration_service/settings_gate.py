"""The registration gate: is open registration enabled for this tenant, right now?

Answered without any call to another service: from this replica's in-process cache (kept
current by the settings events), else Redis, else MongoDB. An in-process entry is trusted
only while this replica's event consumer has been connected since the entry was loaded
(otherwise an event may have been missed) and for at most `max_age` seconds. When no source
answers, the state is UNKNOWN so the caller fails closed.

The gate's answers to a request are written once here: `registration_policy` for
`POST /oidc/register`, `self_management_policy` for RFC 7592, `unavailable` for a 503.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from oidc_common.broker import Broker
from oidc_common.errors import RETRY_AFTER_OUTAGE, OAuthError
from oidc_common.registration_policy import RegistrationPolicy
from oidc_common.settings_cache import SettingsCache, SettingsSnapshot, SettingsUnavailable


class GateState(enum.Enum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class GateDecision:
    state: GateState
    # The one snapshot the decision was made from: the rest of the request (policy, limits)
    # must use it too, so a flag flipping mid-request cannot split the decision.
    snapshot: SettingsSnapshot | None = None


@dataclass(frozen=True)
class _Entry:
    snapshot: SettingsSnapshot
    loaded_at: float
    generation: int
    trusted: bool  # loaded while the event consumer was connected


ChangeListener = Callable[[SettingsSnapshot], None]


class RegistrationGate:
    def __init__(
        self,
        cache: SettingsCache,
        broker: Broker,
        max_age: float = 30.0,
        untrusted_ttl: float = 1.0,
    ) -> None:
        self._cache = cache
        self._broker = broker
        self._max_age = max_age
        self._untrusted_ttl = untrusted_ttl
        self._entries: dict[str, _Entry] = {}
        self._listeners: list[ChangeListener] = []
        self.consuming = False  # set by the per-replica consumer once it is bound
        # Decisions since start, by state: /metrics shows them per replica (exported by
        # events.settings_consumer), UNKNOWN being a fail-closed 503.
        self.decisions: collections.Counter[GateState] = collections.Counter()

    def on_change(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def _events_live(self) -> bool:
        return self.consuming and self._broker.is_connected

    @property
    def events_live(self) -> bool:
        """Whether settings events reach this replica now (its in-process cache is trusted)."""
        return self._events_live()

    @property
    def tenants_held(self) -> int:
        return len(self._entries)

    def _usable(self, entry: _Entry, now: float) -> bool:
        age = now - entry.loaded_at
        if entry.trusted and self._events_live() and entry.generation == self._broker.generation:
            return age < self._max_age
        return age < self._untrusted_ttl

    def remember(self, snapshot: SettingsSnapshot) -> bool:
        """Keep `snapshot` in process unless a newer version is already held."""
        current = self._entries.get(snapshot.tenant_id)
        if current is not None and current.snapshot.version > snapshot.version:
            return False
        changed = current is None or current.snapshot.version != snapshot.version
        self._entries[snapshot.tenant_id] = _Entry(
            snapshot, time.monotonic(), self._broker.generation, self._events_live()
        )
        if changed:
            for listener in self._listeners:
                listener(snapshot)
        return changed

    def forget_all(self) -> None:
        self._entries.clear()

    async def snapshot(self, tenant_id: str) -> SettingsSnapshot | None:
        entry = self._entries.get(tenant_id)
        if entry is not None and self._usable(entry, time.monotonic()):
            return entry.snapshot
        # Without live events Redis may be as stale as we are (it is fed by the same path):
        # then the database, which every accepted change reaches first, decides.
        snapshot = await self._cache.read(tenant_id, database_first=not self._events_live())
        if snapshot is None:
            return None
        self.remember(snapshot)
        held = self._entries.get(tenant_id)
        # Never decide from an older version than this replica already saw.
        return held.snapshot if held and held.snapshot.version > snapshot.version else snapshot

    async def decide(self, tenant_id: str) -> GateDecision:
        decision = await self._decide(tenant_id)
        self.decisions[decision.state] += 1
        return decision

    async def _decide(self, tenant_id: str) -> GateDecision:
        try:
            snapshot = await self.snapshot(tenant_id)
        except SettingsUnavailable:
            return GateDecision(GateState.UNKNOWN)
        if snapshot is None:
            return GateDecision(GateState.DISABLED)
        state = GateState.ENABLED if snapshot.registration_enabled else GateState.DISABLED
        return GateDecision(state, snapshot)


def unavailable() -> OAuthError:
    """503 with Retry-After: what registration needs cannot be known right now (fail closed)."""
    return OAuthError(
        "temporarily_unavailable",
        "Registration is temporarily unavailable, retry later",
        status=503,
        headers={"Retry-After": RETRY_AFTER_OUTAGE},
    )


# Policies already read, by (tenant, settings version): a version's settings never change,
# so its policy is read from the settings once, not on every request.
_POLICIES: dict[tuple[str, int], RegistrationPolicy] = {}
MAX_POLICIES = 4096


def policy_of(snapshot: SettingsSnapshot | None) -> RegistrationPolicy:
    """The registration policy of `snapshot` (the defaults without one)."""
    if snapshot is None:
        return RegistrationPolicy.from_settings({})
    key = (snapshot.tenant_id, snapshot.version)
    policy = _POLICIES.get(key)
    if policy is None:
        if len(_POLICIES) >= MAX_POLICIES:
            _POLICIES.clear()
        policy = _POLICIES[key] = RegistrationPolicy.from_settings(snapshot.settings)
    return policy


def registration_policy(decision: GateDecision) -> RegistrationPolicy:
    """The policy an open registration applies; 503 when the flag cannot be known, 403 while
    registration is off (RFC 7591 §3.2.2 lets the server refuse; Auth0 answers 403)."""
    if decision.state is GateState.UNKNOWN:
        raise unavailable()
    if decision.state is GateState.DISABLED or decision.snapshot is None:
        raise OAuthError(
            "access_denied",
            "Dynamic client registration is disabled for this tenant",
            status=403,
        )
    return policy_of(decision.snapshot)


def self_management_policy(decision: GateDecision) -> RegistrationPolicy:
    """The policy for a client managing its own registration (RFC 7592), whether or not open
    registration is on now; 503 when the settings cannot be known, 403 when the tenant does
    not allow it."""
    if decision.state is GateState.UNKNOWN:
        raise unavailable()
    # A tenant without a settings document has the default policy.
    policy = policy_of(decision.snapshot)
    if not policy.client_self_management:
        raise OAuthError(
            "access_denied",
            "Clients may not read or change their own registration in this tenant; "
            "contact the tenant owner",
            status=403,
        )
    return policy
