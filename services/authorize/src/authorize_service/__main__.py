"""`authorize [serve]` runs the service; `authorize rotate-signing-key` rotates a tenant's key."""

from __future__ import annotations

import argparse
import sys

from oidc_common.admin_cli import UnknownTenantError, command_settings, run_command
from oidc_common.config import ConfigError, Settings
from oidc_common.logs import configure_logging
from oidc_common.mongo import Collections, ensure_indexes, open_client
from oidc_common.service import run
from oidc_common.tenancy import TenantDirectory

from .app import create_app
from .key_rotation import rotate_signing_key

SERVICE = "authorize"


async def _rotate(settings: Settings, domain: str) -> int:
    kek = settings.require_kek()
    client = open_client(settings.mongodb_url)
    try:
        db = client[settings.mongodb_database]
        tenant = await TenantDirectory(db).by_domain(domain.strip().lower())
        if tenant is None:
            raise UnknownTenantError(f"no tenant has the domain {domain!r}")
        await ensure_indexes(db, [Collections.SIGNING_KEYS])
        rotation = await rotate_signing_key(db, tenant.id, kek, settings.access_token_ttl)
    finally:
        await client.close()
    print(f"Rotated the signing key of tenant {tenant.id} ({tenant.domain})")
    print(f"  current kid:  {rotation.new_kid}")
    for kid in rotation.demoted_kids:
        print(f"  previous kid: {kid} (published until {rotation.publish_until.isoformat()})")
    if rotation.retired_count:
        print(f"  retired {rotation.retired_count} expired key(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SERVICE, description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP service (default)")
    rotate = commands.add_parser(
        "rotate-signing-key",
        help="give a tenant a new signing key; the old one stays published until its tokens expire",
    )
    rotate.add_argument("--domain", required=True, help="the tenant's domain (its Host)")
    args = parser.parse_args(argv)

    settings = command_settings(SERVICE)
    if args.command == "rotate-signing-key":
        return run_command(SERVICE, _rotate(settings, args.domain))
    try:
        settings.require_kek()  # fail at start-up, not on the first token request
    except ConfigError as exc:
        print(f"{SERVICE}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(SERVICE, settings.log_level)
    run(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
