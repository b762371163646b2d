#!/usr/bin/env python3
"""The image's HEALTHCHECK: exit 0 when this container's service answers `GET /readyz` with
200 within two seconds, 1 otherwise.

Readiness, not mere liveness: compose starts the gateway (and anything with
`condition: service_healthy`) only once a service can reach its backing stores. Standard
library only, so it runs in the slim image with nothing added.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("PORT", "8000")
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
