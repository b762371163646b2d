"""`registration` runs the registration service."""

from __future__ import annotations

import sys

from oidc_common.admin_cli import command_settings
from oidc_common.logs import configure_logging
from oidc_common.service import run

from .app import create_app

SERVICE = "registration"


def main() -> int:
    settings = command_settings(SERVICE)  # a bad setting ends the process with status 2
    configure_logging(SERVICE, settings.log_level)
    run(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
