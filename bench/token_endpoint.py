"""`make bench`, token endpoint: `client_credentials` and `authorization_code` redemption.

One authorize process pinned to CPU 0, wrk (one thread) on CPU 1, at concurrency 16, next
to the bare-aiohttp baseline answering the same form. Codes are minted into Redis right
before the run by the service's own `AuthorizationCodes` (a code lives 60 s and works once),
for a public client with PKCE S256, so each request is a complete redemption: code claimed,
PKCE checked, user read, access and ID tokens signed (RS256), the client's use recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlencode

import common
from redis.asyncio import Redis

from authorize_service.authorization.pkce import s256
from authorize_service.tokens.authorization_codes import AuthorizationCodes, CodeGrant
from authorize_service.users.passwords import Passwords
from authorize_service.users.repository import Users
from oidc_common.config import Settings
from oidc_common.credentials import hash_secret
from oidc_common.mongo import Collections, open_client
from tenant_settings_service.bootstrap import create_tenant

CONCURRENCY = 16
CALLBACK = "https://app.example.com/callback"
VERIFIER = "v" * 43


async def prepare(settings: Settings) -> tuple[dict[str, str], dict[str, str], str, str]:
    """A tenant, a machine client with a grant on the Management API, a public sign-in client
    and a user; returns the two token forms, the tenant id and the user id."""
    client = open_client(settings.mongodb_url)
    try:
        db = client[settings.mongodb_database]
        assert settings.key_encryption_key is not None
        tenant = await create_tenant(db, common.DOMAIN, settings.key_encryption_key)
        await db[Collections.CLIENTS].insert_one(
            {
                "_id": "bench-public",
                "tenant_id": tenant.tenant_id,
                "client_name": "bench",
                "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "web",
                "client_secret_hash": hash_secret("unused"),
                "reaped_at": None,
            }
        )
        passwords = Passwords.from_settings(settings)
        user = await Users(db).create(
            tenant.tenant_id, "bench@example.com", await passwords.hash("bench-password-1")
        )
    finally:
        await client.close()
    credentials = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "audience": f"http://{common.DOMAIN}/api/v2/",
    }
    redemption = {
        "grant_type": "authorization_code",
        "client_id": "bench-public",
        "redirect_uri": CALLBACK,
        "code_verifier": VERIFIER,
    }
    return credentials, redemption, tenant.tenant_id, user.user_id


async def mint_codes(
    settings: Settings, tenant_id: str, user_id: str, count: int, path: Path
) -> None:
    redis = Redis.from_url(settings.redis_url)
    codes = AuthorizationCodes(redis, settings.redis_prefix)
    grant = CodeGrant(
        tenant_id=tenant_id,
        client_id="bench-public",
        redirect_uri=CALLBACK,
        code_challenge=s256(VERIFIER),
        user_id=user_id,
        scopes=["openid", "email"],
        audience=None,
        nonce="n",
        auth_time=0,
    )
    minted: list[str] = []
    for start in range(0, count, 50):
        minted += await asyncio.gather(*(codes.issue(grant) for _ in range(min(50, count - start))))
    await redis.aclose()
    await asyncio.to_thread(path.write_text, "\n".join(minted) + "\n")


async def main(seconds: int) -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    print(
        f"\ntoken endpoint: authorize pinned to CPU {common.SERVER_CPU}, wrk (1 thread) on the "
        "other "
        f"CPU, c={CONCURRENCY}, {seconds} s per run",
        flush=True,
    )
    settings = common.bench_settings("authorize", uuid.uuid4().hex[:10])
    credentials, redemption, tenant_id, user_id = await prepare(settings)
    state = Path(tempfile.mkdtemp(prefix="dcr-bench-token-"))
    processes: list[subprocess.Popen[bytes]] = []
    results: list[common.Result] = []
    try:
        base_port, port = common.free_port(), common.free_port()
        baseline = common.start_process(
            [common.python(), str(Path(__file__).parent / "baseline_server.py"), str(base_port)],
            dict(os.environ),
            common.SERVER_CPU,
        )
        authorize = common.start_process(
            [common.python(), "-m", "authorize_service"],
            common.service_env(settings, port, "bench"),
            common.SERVER_CPU,
            log=state / "authorize.log",
        )
        processes += [baseline, authorize]
        common.wait_ready(port)
        backing = {
            "ferretdb": common.pids_of("bin/ferretdb"),
            "redis": common.pids_of("redis-server"),
        }
        runs = [
            ("baseline (bare aiohttp)", base_port, baseline.pid, credentials, False),
            ("client_credentials", port, authorize.pid, credentials, False),
            ("authorization_code + PKCE", port, authorize.pid, redemption, True),
        ]
        for name, target, pid, form, with_codes in runs:
            env = {"BENCH_BODY": urlencode(form)}
            url = f"http://127.0.0.1:{target}/oauth/token"
            if with_codes:
                codes = state / "codes.txt"
                await mint_codes(settings, tenant_id, user_id, 200, codes)
                env["BENCH_CODES"] = str(codes)
                common.wrk(name, url, 4, 1, script="token.lua", env=env)  # warm-up
                # Enough codes for a fast server; the run says how many were left over.
                await mint_codes(settings, tenant_id, user_id, 4000 * seconds, codes)
            else:
                common.wrk(name, url, 4, 1, script="token.lua", env=env)
            meter = common.CpuMeter({"server": [pid], **backing})
            results.append(common.wrk(name, url, CONCURRENCY, seconds, meter, "token.lua", env))
            print(common.result_row(results[-1]), flush=True)
    finally:
        common.stop_processes(processes)
        await common.drop(settings)
        shutil.rmtree(state, ignore_errors=True)
    base = results[0].rps
    print("\nratio to the baseline at the same concurrency:")
    for result in results[1:]:
        server_cpu = result.cpu.get("server", 0.0)
        per_request = 10_000 * server_cpu / result.rps if result.rps else float("nan")
        print(
            f"  {result.name:34s} c={result.concurrency:<3d} {100 * result.rps / base:5.1f}%"
            f"   server CPU {per_request:6.0f} µs/request"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    asyncio.run(main(parser.parse_args().seconds))
