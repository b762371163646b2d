"""`authorize [serve]` runs the service; `authorize rotate-signing-key` rotates a tenant's key;
`authorize create-user` creates a user (the password read from stdin, never an argument)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

from pymongo.asynchronous.database import AsyncDatabase

from oidc_common.admin_cli import (
    CommandRefused,
    UnknownTenantError,
    command_settings,
    run_command,
)
from oidc_common.config import ConfigError, Settings
from oidc_common.logs import configure_logging
from oidc_common.mongo import Collections, Document, ensure_indexes, open_client
from oidc_common.service import run
from oidc_common.tenancy import Tenant, TenantDirectory

from .app import create_app
from .key_rotation import rotate_signing_key
from .users.accounts import InvalidNameError, create_user
from .users.emails import InvalidEmailError
from .users.management_api import user_view
from .users.password_policy import WeakPasswordError
from .users.passwords import Passwords
from .users.repository import DuplicateEmailError, Users

SERVICE = "authorize"


@asynccontextmanager
async def _tenant_database(
    settings: Settings, domain: str, collections: list[str]
) -> AsyncIterator[tuple[AsyncDatabase[Document], Tenant]]:
    """The database and the tenant of `domain` (UnknownTenantError if none), with the indexes
    of `collections` in place before a command writes what they guard."""
    client = open_client(settings.mongodb_url)
    try:
        db = client[settings.mongodb_database]
        tenant = await TenantDirectory(db).by_domain(domain.strip().lower())
        if tenant is None:
            raise UnknownTenantError(f"no tenant has the domain {domain!r}")
        await ensure_indexes(db, collections)
        yield db, tenant
    finally:
        await client.close()


async def _rotate(settings: Settings, domain: str) -> int:
    kek = settings.require_kek()
    async with _tenant_database(settings, domain, [Collections.SIGNING_KEYS]) as (db, tenant):
        rotation = await rotate_signing_key(db, tenant.id, kek, settings.access_token_ttl)
    print(f"Rotated the signing key of tenant {tenant.id} ({tenant.domain})")
    print(f"  current kid:  {rotation.new_kid}")
    for kid in rotation.demoted_kids:
        print(f"  previous kid: {kid} (published until {rotation.publish_until.isoformat()})")
    if rotation.retired_count:
        print(f"  retired {rotation.retired_count} expired key(s)")
    return 0


async def _create_user(
    settings: Settings,
    domain: str,
    email: str,
    password: str,
    name: str | None,
    email_verified: bool,
    as_json: bool,
) -> int:
    # The unique email index must exist before the insert it guards.
    async with _tenant_database(settings, domain, [Collections.USERS]) as (db, tenant):
        try:
            user = await create_user(
                Users(db),
                Passwords.from_settings(settings),
                tenant.id,
                email,
                password,
                email_verified=email_verified,
                name=name,
            )
        except (InvalidEmailError, InvalidNameError, WeakPasswordError) as exc:
            raise CommandRefused(str(exc).removeprefix("Payload validation error: ")) from exc
        except DuplicateEmailError as exc:
            raise CommandRefused(f"tenant {tenant.domain!r}: {exc}") from exc
    if as_json:
        print(json.dumps(user_view(user)))
    else:
        print(f"Created user {user.user_id} ({user.email}) in tenant {tenant.id} ({tenant.domain})")
    return 0


def _usage_error(message: str) -> NoReturn:
    print(f"{SERVICE}: {message}; nothing was changed", file=sys.stderr)
    raise SystemExit(2)


def _read_password(from_stdin: bool) -> str:
    """The new user's password: all of stdin (a trailing newline dropped) with
    `--password-stdin`, else typed twice at a terminal prompt. Never a command-line argument,
    which other users of the machine could read in the process list."""
    if from_stdin:
        try:
            raw = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError:
            _usage_error("the password on stdin is not UTF-8 text")
        return raw.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        _usage_error("no terminal to ask for the password: pipe it in with --password-stdin")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        _usage_error("the passwords differ")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SERVICE, description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP service (default)")
    rotate = commands.add_parser(
        "rotate-signing-key",
        help="give a tenant a new signing key; the old one stays published until its tokens expire",
    )
    rotate.add_argument("--domain", required=True, help="the tenant's domain (its Host)")
    new_user = commands.add_parser(
        "create-user",
        help="create a user (Username-Password-Authentication); the password is read from "
        "stdin with --password-stdin, else prompted for",
    )
    new_user.add_argument("--domain", required=True, help="the tenant's domain (its Host)")
    new_user.add_argument("--email", required=True, help="the user's email (unique per tenant)")
    new_user.add_argument("--name", help="display name")
    new_user.add_argument(
        "--email-verified", action="store_true", help="mark the email as already verified"
    )
    new_user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (one trailing newline is dropped)",
    )
    new_user.add_argument("--json", action="store_true", help="print the user as JSON")
    args = parser.parse_args(argv)

    settings = command_settings(SERVICE)
    if args.command == "rotate-signing-key":
        return run_command(SERVICE, _rotate(settings, args.domain))
    if args.command == "create-user":
        password = _read_password(args.password_stdin)
        return run_command(
            SERVICE,
            _create_user(
                settings,
                args.domain,
                args.email,
                password,
                args.name,
                args.email_verified,
                args.json,
            ),
        )
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
