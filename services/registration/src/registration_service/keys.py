"""Typed application keys of the registration service."""

from __future__ import annotations

from aiohttp import web

from oidc_common.settings_cache import SettingsCache

from .events.settings_consumer import SettingsConsumer
from .settings_gate import RegistrationGate

SETTINGS_CACHE = web.AppKey("settings_cache", SettingsCache)
GATE = web.AppKey("registration_gate", RegistrationGate)
SETTINGS_CONSUMER = web.AppKey("settings_consumer", SettingsConsumer)
