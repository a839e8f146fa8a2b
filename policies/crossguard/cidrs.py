"""Reasoning about address ranges: does a set of CIDRs, taken together, open a port to the internet?

A literal `0.0.0.0/0` check misses `0.0.0.0/1` + `128.0.0.0/1`, or a list of /8s that happens to
cover every public address. Here a set is *open* when its union covers the whole public address
space of its family: every address except the IANA special-purpose blocks (private, loopback,
link-local, documentation, multicast, reserved), which the internet cannot reach anyway.
The standard library's `ipaddress` does the arithmetic (`address_exclude`, `subnet_of`); no
third-party package offers more than that for this question.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Blocks that are not globally reachable (IANA IPv4/IPv6 special-purpose address registries).
NOT_PUBLIC = [
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        # IPv6: only 2000::/3 is allocated global unicast; the rest is reserved, unique-local,
        # link-local or multicast.
        "::/3",
        "4000::/2",
        "8000::/1",
        "2001:db8::/32",
    )
]
WHOLE = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


def parse(values: Iterable[Any]) -> tuple[list[Network], list[str]]:
    """(networks, unparseable values); host bits are tolerated (`10.0.0.1/8` is 10.0.0.0/8)."""
    networks: list[Network] = []
    invalid: list[str] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            invalid.append(str(value))
    return networks, invalid


def _uncovered(family: int, networks: list[Network]) -> list[Network]:
    """The parts of the family's address space none of `networks` covers."""
    gaps: list[Network] = [WHOLE[family]]
    for network in ipaddress.collapse_addresses(n for n in networks if n.version == family):
        remaining: list[Network] = []
        for gap in gaps:
            if gap.subnet_of(network):
                continue
            if network.subnet_of(gap):
                remaining.extend(gap.address_exclude(network))
            else:
                remaining.append(gap)
        gaps = remaining
    return gaps


def opens_internet(values: Iterable[Any]) -> bool:
    """True when the CIDRs together cover every public IPv4 or every public IPv6 address."""
    networks, _ = parse(values)
    for family in (4, 6):
        if not any(n.version == family for n in networks):
            continue
        if not _uncovered(family, [*networks, *NOT_PUBLIC]):
            return True
    return False
