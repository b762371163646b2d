"""The default tenant settings: registration off, a conservative open-registration policy."""

from __future__ import annotations

import copy
from typing import Any

from oidc_common.registration_policy import POLICY_KEY, RegistrationPolicy

DEFAULT_SETTINGS: dict[str, Any] = {
    "friendly_name": "",
    "picture_url": None,
    "support_email": None,
    "support_url": None,
    "default_audience": "",
    "flags": {
        # Auth0: "By default, dynamic application registration is disabled for all tenants."
        "enable_dynamic_client_registration": False,
    },
    # The registration policy's defaults, declared with the policy itself.
    POLICY_KEY: RegistrationPolicy().to_settings(),
}


def default_settings(friendly_name: str) -> dict[str, Any]:
    settings = copy.deepcopy(DEFAULT_SETTINGS)
    settings["friendly_name"] = friendly_name
    return settings
