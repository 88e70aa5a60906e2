"""Per-process token-bucket rate limits and the middleware answering 429."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import header, parse_ip, route_path
from app.core.errors import problem_response

Clock = Callable[[], float]

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
# Password logins, by API or console: the same stricter budget per address.
LOGIN_PATHS = frozenset({TOKEN_PATH, "/console/login"})
EXEMPT_PATHS = ("/healthz", "/readyz")  # probes must not be throttled into restarts


class RateLimiter:
    """In-memory token buckets, one per key, refilled continuously at `per_minute` / 60 s.

    State lives in this process: with N API processes the effective limit is N times the
    configured one (a shared store such as Redis is future work). Memory is bounded by
    an LRU cap; an evicted bucket comes back full, so under a flood of new keys the
    limit loosens rather than the process growing. Not thread-safe: one event loop only.
    `per_minute = 0` turns the limiter off.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Clock | None = None,
        max_keys: int = 100_000,
    ) -> None:
        self.enabled = per_minute > 0
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else per_minute)
        self.clock = clock or time.monotonic
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, key: str) -> float:
        """Spend one request of `key`: 0 when allowed, else seconds until it would be."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        level = self._level(key, now)
        allowed = level >= 1.0
        self._store(key, level - 1.0 if allowed else level, now)
        return 0.0 if allowed else (1.0 - level) / self.rate

    def wait_time(self, key: str) -> float:
        """Seconds until `key` may spend a request (0: now), spending nothing."""
        if not self.enabled:
            return 0.0
        level = self._level(key, self.clock())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def _level(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self.capacity
        tokens, updated_at = entry
        return min(self.capacity, tokens + max(0.0, now - updated_at) * self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class RateLimitMiddleware:
    """Answer 429 (problem+json with `Retry-After`) to callers over their budget.

    Keys: a hash of the bearer token when there is one (not verified here: that is the
    app's job), else the client address (`state["client_ip"]`; IPv6 by /64, which one
    host usually holds whole). `POST /api/v1/auth/token` has its own stricter budget per
    address, whatever the headers. Invented bearer tokens would each get a fresh bucket,
    so every 401 an address earns with a bearer token is charged to that address, and an
    address out of that budget is refused before its token counts.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        token_limiter: RateLimiter,
        exempt_paths: Iterable[str] = EXEMPT_PATHS,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.token_limiter = token_limiter
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        address = address_key(scope)
        if scope["method"] == "POST" and route_path(scope) in LOGIN_PATHS:
            wait = self.token_limiter.acquire(f"token:{address}")
        elif (token := _bearer_token(scope)) is None:
            wait = self.limiter.acquire(f"addr:{address}")
        else:
            failures = f"bad-bearer:{address}"
            digest = hashlib.sha256(token.encode("latin-1")).hexdigest()[:32]
            wait = self.limiter.wait_time(failures) or self.limiter.acquire(f"bearer:{digest}")
            if not wait:
                await self.app(scope, receive, self._charging_401s(send, failures))
                return
        if wait:
            await _refuse(scope, receive, send, wait)
        else:
            await self.app(scope, receive, send)

    def _charging_401s(self, send: Send, key: str) -> Send:
        async def charge(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limiter.acquire(key)
            await send(message)

        return charge


async def _refuse(scope: Scope, receive: Receive, send: Send, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    response = problem_response(
        429,
        slug="rate-limited",
        title="Too many requests",
        detail=f"Request budget exhausted; retry in {seconds} s.",
        headers={"Retry-After": str(seconds)},
        instance=scope.get("path"),
    )
    await response(scope, receive, send)


def _bearer_token(scope: Scope) -> str | None:
    scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def address_key(scope: Scope) -> str:
    """The caller's address as a rate-limit key: IPv4 whole, IPv6 by its /64."""
    text = scope.get("state", {}).get("client_ip") or (scope.get("client") or ("unknown",))[0]
    ip = parse_ip(text)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip) if ip else text
