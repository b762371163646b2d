"""`authorize create-user`, run as an operator runs it: a separate process, the password on
standard input."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from authorize_service.users.passwords import Passwords
from oidc_common.config import Settings
from oidc_common.mongo import Collections, Document, open_client
from tests.conftest import SettingsFactory
from tests.support.services import settings_env
from tests.support.tenants import bootstrap_tenant

PASSWORD = "a long enough secret"


async def _cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authorize_service",
        *args,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _users(settings: Settings) -> list[Document]:
    client = open_client(settings.mongodb_url)
    try:
        return [doc async for doc in client[settings.mongodb_database][Collections.USERS].find({})]
    finally:
        await client.close()


async def test_create_user_from_stdin(settings_for: SettingsFactory) -> None:
    settings = settings_for("authorize")
    tenant = await bootstrap_tenant(settings, "acme.example")
    env = settings_env(settings)
    code, out, err = await _cli(
        env,
        "create-user",
        "--domain",
        "Acme.Example",
        "--email",
        "Jane@Example.com",
        "--name",
        "Jane Doe",
        "--email-verified",
        "--password-stdin",
        "--json",
        stdin=f"{PASSWORD}\n".encode(),
    )
    assert code == 0, err
    assert PASSWORD not in out and "argon2" not in out
    user = json.loads(out)
    assert user["email"] == "jane@example.com" and user["name"] == "Jane Doe"
    assert user["email_verified"] is True and user["user_id"].startswith("auth0|")

    [stored] = await _users(settings)
    assert stored["_id"] == user["user_id"] and stored["tenant_id"] == tenant.tenant_id
    # The process read the test's cheap Argon2id parameters from the environment.
    assert stored["password_hash"].startswith("$argon2id$v=19$m=8192,t=1,p=1$")

    # The trailing newline was not part of the password.
    hasher = Passwords.from_settings(settings)
    assert await hasher.verify(stored["password_hash"], PASSWORD)
    assert not await hasher.verify(stored["password_hash"], PASSWORD + "\n")

    # Plain output names the user; nothing secret in it.
    code, out, err = await _cli(
        env,
        "create-user",
        "--domain",
        "acme.example",
        "--email",
        "john@example.com",
        "--password-stdin",
        stdin=b"another long secret",
    )
    assert code == 0, err
    assert "john@example.com" in out and "auth0|" in out and "another" not in out


async def test_refusals_change_nothing(settings_for: SettingsFactory) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, "acme.example")
    env = settings_env(settings)
    base = ("create-user", "--domain", "acme.example", "--password-stdin")
    code, _, err = await _cli(env, *base, "--email", "jane@example.com", stdin=PASSWORD.encode())
    assert code == 0, err

    refusals: list[tuple[tuple[str, ...], bytes, str]] = [
        (("--email", "JANE@example.com"), PASSWORD.encode(), "already exists"),
        (("--email", "new@example.com"), b"short", "too weak"),
        (("--email", "new@example.com"), b"NEW@EXAMPLE.COM", "user information"),
        (("--email", "not-an-email"), PASSWORD.encode(), "email"),
        (("--email", "new@example.com", "--name", "a\x01b"), PASSWORD.encode(), "name"),
    ]
    for extra, stdin, message in refusals:
        code, out, err = await _cli(env, *base, *extra, stdin=stdin)
        assert code == 1, (extra, err)
        assert message in err and "nothing was changed" in err, err
        assert "Traceback" not in err and stdin.decode() not in err + out

    code, _, err = await _cli(
        env,
        "create-user",
        "--domain",
        "nobody.example",
        "--email",
        "x@example.com",
        "--password-stdin",
        stdin=PASSWORD.encode(),
    )
    assert code == 1 and "no tenant" in err and "Traceback" not in err

    # Without --password-stdin and without a terminal: a usage error, never a blocked prompt.
    code, _, err = await _cli(env, "create-user", "--domain", "acme.example", "--email", "y@x.io")
    assert code == 2 and "--password-stdin" in err and "Traceback" not in err
    # Not UTF-8 on stdin: refused cleanly.
    code, _, err = await _cli(
        env, *base, "--email", "z@example.com", stdin=b"\xff\xfe not utf-8 at all"
    )
    assert code == 2 and "UTF-8" in err and "Traceback" not in err

    assert [doc["email"] for doc in await _users(settings)] == ["jane@example.com"]
