"""Small readers of an ASGI scope shared by the hardening middleware."""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes), or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def route_path(scope: Scope) -> str:
    """The request path as the routes see it (without any `root_path` prefix)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def parse_ip(text: str) -> IPAddress | None:
    """An address from a peer or forwarded hop (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
