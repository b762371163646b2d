"""Typed application keys of the tenant-settings service."""

from __future__ import annotations

from aiohttp import web

from .publisher import SettingsPublisher
from .repository import SettingsRepository

REPOSITORY = web.AppKey("settings_repository", SettingsRepository)
PUBLISHER = web.AppKey("settings_publisher", SettingsPublisher)
