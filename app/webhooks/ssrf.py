"""SSRF guard for subscriber URLs: judge the resolved addresses, never the URL text."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx

from app.core.config import webhook_allow_entry

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Hosts that inet_aton may read as IPv4 in a legacy form: `2130706433`, `0x7f000001`, `127.1`.
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


@dataclass(frozen=True)
class AllowedEndpoint:
    """A non-public network and the one port on it that subscribers may reach."""

    network: Network
    port: int


def allow_list(entries: Sequence[str]) -> list[AllowedEndpoint]:
    """The configured `ADDRESS[/PREFIX]:PORT` entries (settings have checked their form)."""
    return [AllowedEndpoint(*webhook_allow_entry(entry)) for entry in entries]


class UrlRefused(ValueError):
    """A subscriber URL that may not be called; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Resolver(Protocol):
    """Turns a host name into the IP addresses a connection would use."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Return the IP addresses of `host` as strings."""
        ...


class SystemResolver:
    """Resolver backed by the operating system's `getaddrinfo`."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Return the addresses `getaddrinfo` gives for `host`."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        families = (socket.AF_INET, socket.AF_INET6)
        return [str(info[4][0]) for info in infos if info[0] in families]


def check_url_syntax(url: str, *, require_https: bool) -> httpx.URL:
    """Parse a subscriber URL; refuse bad schemes, credentials, fragments and missing hosts."""
    try:
        parsed = httpx.URL(url)
        netloc = urlsplit(url).netloc
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in DEFAULT_PORTS:
        raise UrlRefused("scheme must be http or https")
    if require_https and parsed.scheme != "https":
        raise UrlRefused("https is required")
    # httpx drops an empty userinfo (`https://@host/`) and an empty fragment, so read the text.
    if parsed.userinfo or "@" in netloc:
        raise UrlRefused("credentials in the URL are not allowed")
    if not parsed.raw_host:
        raise UrlRefused("URL has no host")
    if port is not None and not 0 < port < 65536:
        raise UrlRefused("port out of range")
    if parsed.fragment or "#" in url:
        raise UrlRefused("URL must not have a fragment")
    return parsed


def _literal_ip(host: str) -> IPAddress | None:
    """Return the address an IP-literal host names, legacy IPv4 spellings included."""
    try:
        return ipaddress.ip_address(unquote(host))
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            # The same reading getaddrinfo gives it: `127.1` and `2130706433` are 127.0.0.1.
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _unwrap(addr: IPAddress) -> IPAddress:
    """Return the IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else itself."""
    if isinstance(addr, ipaddress.IPv4Address):
        return addr
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    # Teredo (2001::/32) is not unwrapped: it is never global, so it is refused as a whole.
    return addr


def _is_public(addr: IPAddress) -> bool:
    """Return whether `addr` is a globally reachable unicast address."""
    # `is_global` alone is not enough on Python 3.11: 224.0.0.1, ff02::1 and fec0::1 pass it.
    special = (
        addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_private
        or (isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local)
    )
    return addr.is_global and not special


def is_public(ip: str) -> bool:
    """Whether `ip` is a public address (tunnelled IPv4 unwrapped first)."""
    try:
        return _is_public(_unwrap(ipaddress.ip_address(ip)))
    except ValueError:
        return False


def address_allowed(ip: str, port: int, allow: Sequence[AllowedEndpoint]) -> bool:
    """Whether a subscriber may be reached at `ip`:`port` (tunnelled IPv4 unwrapped first)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    target = _unwrap(addr)
    for entry in allow:
        # An allow-listed network opens one port, never every service on the host.
        if entry.port == port and any(c in entry.network for c in (addr, target)):
            return True
    return _is_public(target)


async def resolve_and_check(
    url: httpx.URL, resolver: Resolver, allow: Sequence[AllowedEndpoint]
) -> list[str]:
    """Resolve the URL's host and return its addresses; UrlRefused if any one is refused."""
    if url.scheme not in DEFAULT_PORTS:
        raise UrlRefused("scheme must be http or https")
    host = url.raw_host.decode("ascii")
    if not host:
        raise UrlRefused("URL has no host")
    port = url.port or DEFAULT_PORTS[url.scheme]
    literal = _literal_ip(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise UrlRefused(f"host {host!r} does not resolve") from exc
    if not addresses:
        raise UrlRefused(f"host {host!r} does not resolve")
    # One refused address refuses the lot: a public + private answer is a rebinding trick.
    refused = [address for address in addresses if not address_allowed(address, port, allow)]
    if refused:
        raise UrlRefused(f"host {host!r} resolves to a refused address: {', '.join(refused)}")
    return list(dict.fromkeys(addresses))
