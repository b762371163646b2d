"""The address guard: a metadata document is fetched only from public addresses.

Draft -02 §8.6: an authorization server MUST NOT fetch a Client Identifier URL that resolves
to a special-use address (RFC 6890). The host is resolved once, every address it resolves to
must be public, and the fetcher then connects only to those addresses (`fetcher.py`), so a
second DNS answer between the check and the connection (DNS rebinding) is never used.

"Public" is decided twice, by the table below (IANA's IPv4 and IPv6 Special-Purpose Address
Registries) and by Python's `ipaddress` flags; an address either of them calls special is
refused. IPv6 must also be global unicast (2000::/3). Forms that carry an IPv4 address
(IPv4-mapped, NAT64 64:ff9b::/96, 6to4) are judged by the IPv4 address they carry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from .errors import FetchFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the host resolves to, as strings (`getaddrinfo`).
Resolve = Callable[[str, int], Awaitable[list[str]]]

SPECIAL_IPV4: Final = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network" (RFC 791)
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # shared address space, carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata services live here)
        "172.16.0.0/12",  # private (RFC 1918)
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "192.0.2.0/24",  # documentation, TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast (RFC 7526, deprecated)
        "192.168.0.0/16",  # private (RFC 1918)
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation, TEST-NET-2
        "203.0.113.0/24",  # documentation, TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast address
    )
)
SPECIAL_IPV6: Final = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::/96",  # unspecified, loopback, IPv4-compatible (deprecated, RFC 4291)
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation (RFC 8215)
        "100::/64",  # discard-only (RFC 6666)
        "2001::/23",  # IETF protocol assignments, Teredo among them (RFC 2928, RFC 4380)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
        "fc00::/7",  # unique-local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
GLOBAL_UNICAST_IPV6: Final = ipaddress.IPv6Network("2000::/3")
NAT64_IPV6: Final = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix


def _python_says_special(address: IPAddress) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_IPV6:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour  # 2002::/16, or None


def is_public_address(address: IPAddress) -> bool:
    """Whether a metadata document may be fetched from `address` (see the module docstring).
    An IPv6 address with a zone (`fe80::1%eth0`) is link-local, so never public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.scope_id is not None or address not in GLOBAL_UNICAST_IPV6:
            return False
        if any(address in network for network in SPECIAL_IPV6):
            return False
    elif any(address in network for network in SPECIAL_IPV4):
        return False
    return not _python_says_special(address)


def parse_address(text: str) -> IPAddress | None:
    """`text` as an IP address (IPv6 with or without brackets, with a zone), else None."""
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to through the system resolver (`getaddrinfo`, TCP).
    Raises OSError (`socket.gaierror`) when it does not resolve."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


def _unique(addresses: Iterable[IPAddress]) -> tuple[IPAddress, ...]:
    return tuple(dict.fromkeys(addresses))


async def checked_addresses(
    host: str, port: int, *, resolve: Resolve, allow_private: bool
) -> tuple[IPAddress, ...]:
    """The addresses to connect to for `host`: an IP literal as it is, a name resolved once.
    Unless `allow_private` (the host is in CIMD_PRIVATE_HOSTS), every address must be public.

    Raises FetchFailed (host-wide) when the name does not resolve or any address it resolves
    to is not public; the message never shows the address (it could map an internal network).
    """
    literal = parse_address(host)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        try:
            answers = await resolve(host, port)
        except OSError:
            answers = []
        parsed = [parse_address(answer) for answer in answers]
        addresses = _unique(address for address in parsed if address is not None)
        if not addresses:
            raise FetchFailed(f"The host {host} could not be resolved.", host_wide=True)
    if not allow_private and not all(is_public_address(address) for address in addresses):
        raise FetchFailed(
            f"The host {host} resolves to a private, loopback, link-local or otherwise "
            "special-use address; metadata documents are only fetched from public addresses.",
            host_wide=True,
        )
    return addresses
