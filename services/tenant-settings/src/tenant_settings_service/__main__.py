"""`tenant-settings [serve]` runs the service; `tenant-settings create-tenant` bootstraps a
tenant; `tenant-settings rotate-management-secret` replaces its Management API client's
secret (the one printed at creation is stored only hashed)."""

from __future__ import annotations

import argparse
import json
import sys

from oidc_common.admin_cli import command_settings, run_command
from oidc_common.config import Settings
from oidc_common.logs import configure_logging
from oidc_common.mongo import open_client
from oidc_common.service import run

from .app import create_app
from .bootstrap import BootstrapResult, create_tenant, rotate_management_secret

SERVICE = "tenant-settings"


async def _create_tenant(settings: Settings, domain: str, name: str | None, as_json: bool) -> int:
    kek = settings.require_kek()
    client = open_client(settings.mongodb_url)
    try:
        result = await create_tenant(client[settings.mongodb_database], domain, kek, name)
    finally:
        await client.close()
    _print_credentials(
        result, f"Created tenant {result.tenant_id} for domain {result.domain}", as_json
    )
    return 0


async def _rotate_secret(settings: Settings, domain: str, as_json: bool) -> int:
    client = open_client(settings.mongodb_url)
    try:
        result = await rotate_management_secret(client[settings.mongodb_database], domain)
    finally:
        await client.close()
    _print_credentials(
        result, f"New Management API client secret for domain {result.domain}", as_json
    )
    return 0


def _print_credentials(result: BootstrapResult, headline: str, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "tenant_id": result.tenant_id,
                    "domain": result.domain,
                    "client_id": result.client_id,
                    "client_secret": result.client_secret,
                }
            )
        )
        return
    print(headline)
    print("Management API client (shown once; the secret is stored hashed):")
    print(f"  client_id:     {result.client_id}")
    print(f"  client_secret: {result.client_secret}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SERVICE, description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP service (default)")
    create = commands.add_parser("create-tenant", help="create a tenant and its management client")
    create.add_argument("--domain", required=True, help="the tenant's domain (its Host)")
    create.add_argument("--name", help="friendly name (defaults to the domain)")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    rotate = commands.add_parser(
        "rotate-management-secret",
        help="replace the secret of a tenant's Management API client (the old one stops working)",
    )
    rotate.add_argument("--domain", required=True, help="the tenant's domain")
    rotate.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    settings = command_settings(SERVICE)
    if args.command == "create-tenant":
        return run_command(SERVICE, _create_tenant(settings, args.domain, args.name, args.json))
    if args.command == "rotate-management-secret":
        return run_command(SERVICE, _rotate_secret(settings, args.domain, args.json))
    configure_logging(SERVICE, settings.log_level)
    run(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
