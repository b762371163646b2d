"""`registration` runs the registration service."""

from __future__ import annotations

import sys

from oidc_common.config import ConfigError, Settings
from oidc_common.logs import configure_logging
from oidc_common.service import run

from .app import create_app

SERVICE = "registration"


def main() -> int:
    try:
        settings = Settings.from_env(SERVICE)
    except ConfigError as exc:
        print(f"{SERVICE}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(SERVICE, settings.log_level)
    run(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
