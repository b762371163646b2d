"""Typed application keys of the registration service."""

from __future__ import annotations

from aiohttp import web

from oidc_common.settings_cache import SettingsCache

from .abuse.admission import Admitter
from .abuse.client_cap import ClientCap
from .abuse.reaper import Reaper
from .clients.repository import ClientRepository
from .events.client_events import ClientEvents
from .events.settings_consumer import SettingsConsumer
from .idempotency import IdempotencyStore
from .settings_gate import RegistrationGate

SETTINGS_CACHE = web.AppKey("settings_cache", SettingsCache)
GATE = web.AppKey("registration_gate", RegistrationGate)
SETTINGS_CONSUMER = web.AppKey("settings_consumer", SettingsConsumer)
CLIENTS = web.AppKey("clients", ClientRepository)
CLIENT_EVENTS = web.AppKey("client_events", ClientEvents)
ADMITTER = web.AppKey("admitter", Admitter)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
REAPER = web.AppKey("reaper", Reaper)
CLIENT_CAP = web.AppKey("client_cap", ClientCap)
