"""The address guard of Client ID Metadata Document fetches (draft -02 §8.6): which addresses
count as public, that a name is resolved once and judged on every address, and that a refused
host is never connected to."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import aiohttp
import pytest

from authorize_service.client_id_metadata.addresses import (
    checked_addresses,
    is_public_address,
)
from authorize_service.client_id_metadata.errors import FetchFailed
from authorize_service.client_id_metadata.fetcher import DocumentFetcher, tls_context
from authorize_service.client_id_metadata.urls import parse_client_id_url

NOT_PUBLIC = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",  # carrier-grade NAT
    "127.0.0.1",
    "127.1.2.3",
    "169.254.169.254",  # cloud metadata
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::",
    "::1",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::ffff:127.0.0.1",  # IPv4-mapped forms of the above
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "::ffff:192.168.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::1",  # local-use NAT64
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001::1",  # Teredo
    "2001:db8::1",  # documentation
    "3fff::1",
    "100::1",  # discard-only
    "fc00::1",  # unique-local
    "fd12:3456:789a::1",
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "ff0e::1",
    "4000::1",  # outside global unicast 2000::/3
]
PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_special_use_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def resolver(*answers: str, calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(answers)

    return resolve


async def test_every_resolved_address_must_be_public() -> None:
    # One private answer among public ones is enough to refuse: the connection could use it.
    with pytest.raises(FetchFailed, match="only fetched from public addresses") as caught:
        await checked_addresses(
            "client.example",
            443,
            resolve=resolver("8.8.8.8", "10.0.0.7"),
            allow_private=False,
        )
    assert caught.value.host_wide
    assert "10.0.0.7" not in caught.value.detail  # never shows the internal address


async def test_public_answers_are_what_is_connected_to() -> None:
    calls: list[str] = []
    addresses = await checked_addresses(
        "client.example",
        443,
        resolve=resolver("8.8.8.8", "2606:4700:4700::1111", "8.8.8.8", calls=calls),
        allow_private=False,
    )
    assert [str(a) for a in addresses] == ["8.8.8.8", "2606:4700:4700::1111"]
    assert calls == ["client.example"]  # resolved once


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.1.2.3", "169.254.169.254"])
async def test_ip_literal_hosts_are_judged_without_dns(host: str) -> None:
    calls: list[str] = []
    with pytest.raises(FetchFailed, match="public addresses"):
        await checked_addresses(host, 443, resolve=resolver(calls=calls), allow_private=False)
    assert calls == []


async def test_unresolvable_host_is_refused() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("NXDOMAIN")

    with pytest.raises(FetchFailed, match="could not be resolved"):
        await checked_addresses("nowhere.example", 443, resolve=fails, allow_private=False)


async def test_private_hosts_relax_the_guard_for_themselves_only() -> None:
    addresses = await checked_addresses(
        "client.test", 443, resolve=resolver("127.0.0.1"), allow_private=True
    )
    assert [str(a) for a in addresses] == ["127.0.0.1"]


class ConnectorSpy(aiohttp.TCPConnector):
    built: list[ConnectorSpy] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ConnectorSpy.built.append(self)
        super().__init__(*args, **kwargs)


@pytest.mark.parametrize(
    ("host", "answer"),
    [
        ("loopback.test", "127.0.0.1"),
        ("ten.test", "10.0.0.1"),
        ("metadata.test", "169.254.169.254"),
        ("v6-loopback.test", "::1"),
        ("mapped.test", "::ffff:127.0.0.1"),
    ],
)
async def test_refused_host_gets_no_connector(
    host: str, answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard runs before any connector exists: nothing is connected anywhere. Another
    host's relaxation (CIMD_PRIVATE_HOSTS) does not apply."""
    ConnectorSpy.built.clear()
    monkeypatch.setattr(aiohttp, "TCPConnector", ConnectorSpy)  # what the fetcher builds
    fetcher = DocumentFetcher(
        tls_context(None), frozenset({"client.test"}), resolve=resolver(answer)
    )
    with pytest.raises(FetchFailed, match="only fetched from public addresses"):
        await fetcher.fetch(parse_client_id_url(f"https://{host}/client.json"))
    assert ConnectorSpy.built == []


@pytest.mark.parametrize("listen", ["127.0.0.1", "::1"])
async def test_loopback_listener_sees_no_connection_unless_relaxed(listen: str) -> None:
    """A socket listening where the name resolves to: refused by default, no connection
    reaches it; with the host in CIMD_PRIVATE_HOSTS the same fetch does connect (so the first
    half would have seen a connection)."""
    accepted: list[str] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append("connection")
        writer.close()

    server = await asyncio.start_server(on_connect, listen, 0)
    port = server.sockets[0].getsockname()[1]
    url = parse_client_id_url(f"https://client.test:{port}/client.json")
    strict = DocumentFetcher(tls_context(None), resolve=resolver(listen))
    relaxed = DocumentFetcher(
        tls_context(None), frozenset({"client.test"}), resolve=resolver(listen)
    )
    try:
        with pytest.raises(FetchFailed, match="only fetched from public addresses"):
            await strict.fetch(url)
        await asyncio.sleep(0.05)
        assert accepted == []
        with pytest.raises(FetchFailed):  # not TLS: connected, then refused
            await relaxed.fetch(url)
        await asyncio.sleep(0.05)
        assert accepted == ["connection"]
    finally:
        server.close()
        await server.wait_closed()
