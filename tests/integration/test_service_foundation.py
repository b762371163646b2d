"""Tenant resolution, the error middleware, request ids and /readyz on a real service app."""

from __future__ import annotations

import asyncio

from aiohttp import web

from oidc_common.config import _parse_networks
from oidc_common.mongo import open_client
from oidc_common.service import create_service_app
from oidc_common.tenancy import ORIGIN, TENANT, TenantDirectory
from tests.conftest import SettingsFactory
from tests.support.services import serve, with_overrides
from tests.support.tenants import bootstrap_tenant


def _probe_routes(app: web.Application) -> None:
    async def whoami(request: web.Request) -> web.Response:
        origin = request[ORIGIN]
        return web.json_response(
            {"tenant": request[TENANT].domain, "issuer": origin.issuer, "ip": origin.client_ip}
        )

    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail: password=hunter2")

    app.router.add_get("/whoami", whoami)
    app.router.add_get("/explode", explode)
    app.router.add_get("/api/v2/explode", explode)


async def test_known_host_resolves_its_tenant(settings_for: SettingsFactory) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, "known.example")
    app = create_service_app(settings)
    _probe_routes(app)
    async with serve(app) as client:
        response = await client.get("/whoami", headers={"Host": "known.example:8443"})
        assert response.status == 200
        body = await response.json()
        assert body["tenant"] == "known.example"
        assert body["issuer"] == "http://known.example:8443/"


async def test_unknown_host_is_404_in_the_endpoint_format(settings_for: SettingsFactory) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, "known.example")
    app = create_service_app(settings)
    _probe_routes(app)
    async with serve(app) as client:
        oauth = await client.get("/whoami", headers={"Host": "stranger.example"})
        assert oauth.status == 404
        assert (await oauth.json())["error"] == "not_found"
        management = await client.get("/api/v2/explode", headers={"Host": "stranger.example"})
        assert management.status == 404
        body = await management.json()
        assert body["statusCode"] == 404 and body["error"] == "Not Found"


async def test_forwarded_headers_are_honoured_only_from_trusted_proxies(
    settings_for: SettingsFactory,
) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, "known.example")
    await bootstrap_tenant(settings, "victim.example")
    spoof = {
        "Host": "known.example",
        "X-Forwarded-Host": "victim.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "203.0.113.9",
    }
    # The test client connects from 127.0.0.1; trust only some other address.
    untrusted = with_overrides(settings, trusted_proxies=_parse_networks("T", "10.9.9.9"))
    app = create_service_app(untrusted)
    _probe_routes(app)
    async with serve(app) as client:
        body = await (await client.get("/whoami", headers=spoof)).json()
        assert body == {
            "tenant": "known.example",
            "issuer": "http://known.example/",
            "ip": "127.0.0.1",
        }

    trusted_app = create_service_app(settings)  # default: loopback is the trusted gateway
    _probe_routes(trusted_app)
    async with serve(trusted_app) as client:
        body = await (await client.get("/whoami", headers=spoof)).json()
        assert body == {
            "tenant": "victim.example",
            "issuer": "https://victim.example/",
            "ip": "203.0.113.9",
        }


async def test_unexpected_exception_becomes_a_clean_500(settings_for: SettingsFactory) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, "known.example")
    app = create_service_app(settings)
    _probe_routes(app)
    async with serve(app) as client:
        response = await client.get(
            "/explode", headers={"Host": "known.example", "X-Request-ID": "req-123"}
        )
        assert response.status == 500
        assert response.headers["X-Request-ID"] == "req-123"
        text = await response.text()
        assert "hunter2" not in text and "Traceback" not in text
        assert await response.json() == {
            "error": "server_error",
            "error_description": "The server encountered an unexpected error",
        }
        management = await client.get("/api/v2/explode", headers={"Host": "known.example"})
        assert management.status == 500
        body = await management.json()
        assert body["statusCode"] == 500 and body["error"] == "Internal Server Error"
        assert "hunter2" not in body["message"]
        generated = management.headers["X-Request-ID"]
        assert len(generated) == 32 and generated != "req-123"


async def test_readyz_reports_each_dependency(settings_for: SettingsFactory) -> None:
    settings = settings_for("registration")
    app = create_service_app(settings)
    async with serve(app) as client:
        for _ in range(50):  # the broker connects in the background
            response = await client.get("/readyz")
            if response.status == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status == 200
        assert (await response.json())["checks"] == {
            "mongodb": "up",
            "redis": "up",
            "rabbitmq": "up",
        }
        assert (await client.get("/healthz")).status == 200
        assert (await client.request("PROPFIND", "/nowhere")).status in (404, 405)
        metrics = await (await client.get("/metrics")).text()
        assert 'http_requests_total{method="GET",route="/readyz"' in metrics
        # Latency by route, method and status; a made-up method does not become a label.
        assert (
            'http_request_duration_seconds_count{method="GET",route="/readyz",'
            'service="registration",status="200"}' in metrics
        )
        assert 'method="PROPFIND"' not in metrics and 'method="other"' in metrics


async def test_readyz_reports_a_dependency_down(settings_for: SettingsFactory) -> None:
    settings = with_overrides(settings_for("registration"), redis_url="redis://127.0.0.1:1/0")
    app = create_service_app(settings)
    async with serve(app) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["redis"] == "down"
        assert body["checks"]["mongodb"] == "up"


async def test_unknown_hosts_do_not_grow_the_tenant_cache(settings_for: SettingsFactory) -> None:
    settings = settings_for("authorize")
    await bootstrap_tenant(settings, "known.example")
    client = open_client(settings.mongodb_url)
    try:
        directory = TenantDirectory(client[settings.mongodb_database], max_entries=10)
        for i in range(50):
            assert await directory.by_domain(f"random-{i}.example") is None
        assert len(directory._cache) == 10
        assert (await directory.by_domain("known.example")) is not None
    finally:
        await client.close()
