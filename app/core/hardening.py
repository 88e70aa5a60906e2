"""HTTP hardening as pure ASGI middleware: client address, security headers, CORS, rate
limits and JSON shape caps; `install_hardening()` puts each in its place."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import IPAddress, header, parse_ip, route_path
from app.core.jsonshape import JsonShapeMiddleware, json_shape_problem
from app.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from app.core.ratelimit import Clock, RateLimiter, RateLimitMiddleware

__all__ = [
    "ClientAddressMiddleware",
    "JsonShapeMiddleware",
    "RateLimitMiddleware",
    "RateLimiter",
    "SecurityHeadersMiddleware",
    "docs_csp",
    "install_hardening",
    "json_shape_problem",
]

HSTS = "max-age=63072000; includeSubDomains"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
FIXED_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
NO_STORE_PREFIXES = ("/api/v1/auth/",)
# The web console's pages: scripts, styles and images from the app itself only (no
# inline script or style, no CDN), forms posted back to it only.
CONSOLE_PREFIX = "/console"
CONSOLE_STATIC = "/console/static/"
CONSOLE_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)


# The docs pages' CSP: their scripts, styles and images come from the app itself
# (app/core/docs.py), never a CDN. Scripts get neither a nonce nor 'unsafe-inline': the
# SHA-256 of each inline bootstrap script is taken from the page as it is sent, and the
# page is built from the app's configuration only, never from request input. Styles do
# need 'unsafe-inline': ReDoc's styled-components insert <style> elements at run time and
# its standalone bundle has no nonce hook (style injection cannot run code). ReDoc's
# search runs in a worker made from a blob: URL; Swagger UI's CSS draws its icons from
# data: URIs.
DOCS_POLICY = (
    "default-src 'none'",
    "script-src {scripts}",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "worker-src blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.S | re.I)


def docs_csp(page: bytes) -> str:
    """The CSP for a docs page: the app's own scripts and exactly the page's inline ones."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page)
    ]
    scripts = " ".join(["'self'", *hashes])
    return "; ".join(DOCS_POLICY).replace("{scripts}", scripts)


class SecurityHeadersMiddleware:
    """Add the headers every answer carries, and the CSP that fits it; the app's own
    values for any of them win."""

    def __init__(self, app: ASGIApp, *, docs_paths: Iterable[str] = ("/docs", "/redoc")) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        docs = path in self.docs_paths
        fixed = list(FIXED_HEADERS)
        # `client_scheme` is set by ClientAddressMiddleware from a trusted proxy's header.
        if scope.get("state", {}).get("client_scheme", scope.get("scheme")) == "https":
            fixed.append(("Strict-Transport-Security", HSTS))
        if header(scope, b"authorization") is not None or path.startswith(NO_STORE_PREFIXES):
            fixed.append(("Cache-Control", "no-store"))
        console = path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")
        if console:
            fixed.append(("Content-Security-Policy", CONSOLE_CSP))
            if not path.startswith(CONSOLE_STATIC):
                fixed.append(("Cache-Control", "no-store"))  # pages show alert content
        elif not docs:
            fixed.append(("Content-Security-Policy", API_CSP))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in fixed:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(
            scope, receive, _hashing_send(send_with_headers) if docs else send_with_headers
        )


def _hashing_send(send: Send) -> Send:
    """Hold a (small) docs page to its end, then send it with a CSP naming its scripts."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def hold(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        page = b"".join(chunks)
        MutableHeaders(scope=start).setdefault("Content-Security-Policy", docs_csp(page))
        await send(start)
        await send({"type": "http.response.body", "body": page, "more_body": False})

    return hold


class ClientAddressMiddleware:
    """Set `state["client_ip"]` and `state["client_scheme"]`, believing X-Forwarded-For
    and X-Forwarded-Proto only when the socket peer is one of our trusted proxies."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(c.strip(), strict=False) for c in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer_text: str | None = client[0] if client else None
        peer = parse_ip(peer_text) if peer_text else None
        address = str(peer) if peer else peer_text
        scheme = scope.get("scheme", "http")
        if peer is not None and self._trusted(peer):
            address = str(self._forwarded_client(scope, peer))
            proto = header(scope, b"x-forwarded-proto")
            if proto:
                # With several proxies the nearest one's value is the right-most.
                last = proto.rsplit(",", 1)[-1].strip().lower()
                scheme = last if last in ("http", "https") else scheme
        state = scope.setdefault("state", {})
        state["client_ip"] = address
        state["client_scheme"] = scheme
        await self.app(scope, receive, send)

    def _trusted(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.trusted)

    def _forwarded_client(self, scope: Scope, peer: IPAddress) -> IPAddress:
        """The right-most X-Forwarded-For hop that is not a trusted proxy.

        Everything left of it was written by the client and may be invented. When every
        hop is trusted the left-most is the client; an unreadable hop stops the walk at
        the last address a trusted proxy vouched for.
        """
        hops = [
            hop
            for name, value in scope.get("headers", [])
            if name == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        client = peer
        for hop in reversed(hops):
            ip = parse_ip(hop)
            if ip is None:
                break
            client = ip
            if not self._trusted(ip):
                break
        return client


def install_hardening(
    app: FastAPI,
    *,
    trusted_proxies: list[str],
    cors_origins: list[str],
    rate_per_minute: int,
    token_rate_per_minute: int,
    clock: Clock | None = None,
) -> None:
    """Add the hardening middleware to `app`; a second call replaces the first set.

    Call it after the other `add_middleware` calls. Order, outermost first: client
    address (the request context copies it into logs and audit records, the limiter keys
    on it), request id, security headers, CORS (so a 429 stays readable cross-origin),
    rate limit, body size cap, JSON shape cap, the app.
    A rate of 0 turns that limit off; CORS is off when `cors_origins` is empty.
    """
    if app.middleware_stack is not None:
        raise RuntimeError("install_hardening() must run before the app serves a request")
    for origin in cors_origins:
        if not re.fullmatch(r"https?://[^/\s*]+", origin):
            raise ValueError(f"CORS origin {origin!r}: give scheme://host[:port], no wildcard")
    stack = app.user_middleware
    previous = getattr(app.state, "hardening_middleware", ())
    stack[:] = [m for m in stack if not any(m is p for p in previous)]

    address = Middleware(ClientAddressMiddleware, trusted_proxies=trusted_proxies)
    outer = [Middleware(SecurityHeadersMiddleware, docs_paths=_docs_paths(app))]
    if cors_origins:
        outer.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_credentials=False,  # bearer tokens travel in a header, never cookies
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "If-Match",
                    "Idempotency-Key",
                    "X-Request-ID",
                ],
                expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
            )
        )
    outer.append(
        Middleware(
            RateLimitMiddleware,
            limiter=RateLimiter(rate_per_minute, clock=clock),
            token_limiter=RateLimiter(token_rate_per_minute, clock=clock),
        )
    )
    inner = Middleware(JsonShapeMiddleware)
    context = _index(stack, RequestContextMiddleware)
    stack.insert(0 if context is None else context, address)
    context = _index(stack, RequestContextMiddleware)
    at = 1 if context is None else context + 1
    stack[at:at] = outer
    body_cap = _index(stack, BodySizeLimitMiddleware)
    stack.insert(len(stack) if body_cap is None else body_cap + 1, inner)
    app.state.hardening_middleware = (address, *outer, inner)


def _index(stack: list[Middleware], cls: type) -> int | None:
    return next((i for i, m in enumerate(stack) if m.cls is cls), None)


def _docs_paths(app: FastAPI) -> list[str]:
    pages = getattr(app.state, "docs_pages", None)  # set by app.core.docs.install_docs
    if pages:
        return list(pages)
    paths = [app.docs_url, app.redoc_url]
    if app.docs_url:
        paths.append(app.swagger_ui_oauth2_redirect_url)
    return [p for p in paths if p]
