"""Where the service may send requests it is told to send (webhooks): public addresses only.

A webhook URL is checked when it is registered and again at every delivery, against the
addresses its host resolves to then (a name can be re-pointed at an internal address after
registration: DNS rebinding); the delivery connects to the address that was checked.
Private, loopback, link-local (cloud metadata at 169.254.169.254), shared, reserved,
multicast and unspecified addresses are refused unless the host is on the allow-list
(``IDR_WEBHOOK_ALLOW_HOSTS``: names, addresses or networks).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.errors import IdrError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class EgressRefused(IdrError):
    """The URL's host is, or resolves to, an address the service does not send to."""

    status = 422


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


# Tests replace this to simulate a name that resolves differently later (rebinding).
resolver: Resolver = _resolve


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Destination:
    url: str
    host: str
    port: int
    address: str  # the checked address the request connects to


def parse_allow_list(text: str) -> tuple[frozenset[str], tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]]:
    names: set[str] = set()
    nets = []
    for item in (x.strip().lower() for x in text.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            names.add(item.rstrip("."))
    return frozenset(names), tuple(nets)


def _allowed(host: str, ip: IPAddress | None, allow: str) -> bool:
    names, nets = parse_allow_list(allow)
    return host in names or (ip is not None and any(ip in n for n in nets))


def check(url: str, allow: str = "", field: str = "url") -> Destination:
    """The destination of ``url`` if the service may send to it, else EgressRefused naming
    the reason (never the raw resolver error)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused("url must be an absolute http(s) URL", field=field)
    host = parts.hostname.lower().rstrip(".")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EgressRefused("url has an invalid port", field=field) from None
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError):
            raise EgressRefused(f"url host {host!r} does not resolve", field=field) from None
        if not addresses:
            raise EgressRefused(f"url host {host!r} does not resolve", field=field)
    for a in addresses:
        ip = ipaddress.ip_address(a.split("%", 1)[0])
        if not is_public(ip) and not _allowed(host, ip, allow):
            what = "is" if literal is not None else f"resolves to {a}, which is"
            raise EgressRefused(
                f"url host {host!r} {what} not a public address (private, loopback, link-local or reserved); "
                "webhooks are sent to public addresses only, unless IDR_WEBHOOK_ALLOW_HOSTS lists the host",
                field=field,
            )
    return Destination(url=url, host=host, port=port, address=addresses[0])
