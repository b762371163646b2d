"""Which bucket a client address counts in, for every per-address limit (registration rate
limit, failed-login throttle)."""

from __future__ import annotations

import functools
import ipaddress


# Cached: every request asks for its client's bucket, and parsing an address costs more
# than the rest of the lookup; bounded, as anyone can come from a fresh address.
@functools.lru_cache(maxsize=8192)
def client_key(ip: str) -> str:
    """The bucket of a client address: the address for IPv4, its /64 for IPv6 (one host
    holds a whole /64, so per-address buckets would be free to multiply)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
