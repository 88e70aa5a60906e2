"""One signed POST to a subscriber: SSRF checks, Standard Webhooks headers, a capped answer.

The sender connects to the address it checked (no second DNS lookup to be rebound),
never follows a redirect, reads at most the configured bytes of an answer and keeps
an excerpt only of answers from public addresses.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import aiohttp
import httpx
import yarl

from app.core.config import Settings
from app.core.types import utcnow
from app.webhooks import signing, ssrf
from app.webhooks.models import Delivery, Subscription

RESPONSE_EXCERPT_BYTES = 256
# The longest a receiver's Retry-After may push a delivery back.
RETRY_AFTER_CAP_SECONDS = 86400
# The most parsed subscriber URLs a sender keeps.
CACHED_URLS = 4096


@dataclass
class Outcome:
    """How one attempt ended: the answer's status, time taken, error, excerpt, Retry-After."""

    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """A worker's outgoing HTTP: one connection pool, checked addresses, signed bodies."""

    def __init__(self, settings: Settings, resolver: ssrf.Resolver) -> None:
        self.settings = settings
        self.resolver = resolver
        self.allow = ssrf.allow_list(settings.webhook_allow_networks)
        self._session: aiohttp.ClientSession | None = None
        # Parsing is a pure function of the URL: done once per URL, not once per message.
        # The host is still resolved and checked on every send (no rebinding).
        self._parsed: dict[str, httpx.URL | ssrf.UrlRefused] = {}
        self._targets: dict[tuple[str, str], yarl.URL] = {}

    def _http(self) -> aiohttp.ClientSession:
        # aiohttp, not httpx: measured here, httpx's connection pool spent two thirds of
        # the worker's time on bookkeeping (bench/RESULTS.md, webhook throughput).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.settings.webhook_connect_timeout,
                    sock_connect=self.settings.webhook_connect_timeout,
                    sock_read=self.settings.webhook_read_timeout,
                ),
                connector=aiohttp.TCPConnector(
                    limit=self.settings.webhook_concurrency, use_dns_cache=False
                ),
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the outgoing connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _parse(self, raw: str) -> httpx.URL:
        """The checked URL, parsed once; UrlRefused as the check decided."""
        parsed = self._parsed.get(raw)
        if parsed is None:
            try:
                parsed = ssrf.check_url_syntax(raw, require_https=self.settings.webhooks_need_https)
            except ssrf.UrlRefused as exc:
                parsed = exc
            if len(self._parsed) >= CACHED_URLS:
                self._parsed.clear()
            self._parsed[raw] = parsed
        if isinstance(parsed, ssrf.UrlRefused):
            raise ssrf.UrlRefused(parsed.reason)
        return parsed

    def _target(self, raw: str, url: httpx.URL, address: str) -> yarl.URL:
        """The URL with the checked address for host: no second DNS lookup to be rebound."""
        target = self._targets.get((raw, address))
        if target is None:
            target = yarl.URL(str(url.copy_with(host=address)), encoded=True)
            if len(self._targets) >= CACHED_URLS:
                self._targets.clear()
            self._targets[raw, address] = target
        return target

    async def post(self, sub: Subscription, delivery: Delivery, body: bytes) -> Outcome:
        """One signed POST to the checked address; never follows redirects or reads > cap."""
        started = time.perf_counter()
        try:
            url = self._parse(sub.url)
            addresses = await ssrf.resolve_and_check(url, self.resolver, self.allow)
        except ssrf.UrlRefused as exc:
            return Outcome(error=f"refused: {exc}")
        headers = signing.headers(
            signing_secrets(sub), signing.message_id(delivery.id), int(time.time()), body
        )
        headers["host"] = url.netloc.decode("ascii")
        headers["user-agent"] = "Tracewire-Webhooks/1"
        headers["content-type"] = "application/json"
        target = self._target(sub.url, url, addresses[0])
        tls_name = url.host if url.scheme == "https" else None
        try:
            async with self._http().post(
                target,
                data=body,
                headers=headers,
                allow_redirects=False,
                server_hostname=tls_name,
            ) as response:
                answer = await _read_capped(response, self.settings.webhook_max_response_bytes)
                return Outcome(
                    status_code=response.status,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    excerpt=excerpt(answer, public=ssrf.is_public(addresses[0])),
                    retry_after=_retry_after(response.headers.get("retry-after")),
                )
        except TimeoutError:
            return Outcome(error="timeout", latency_ms=(time.perf_counter() - started) * 1000)
        except aiohttp.ClientError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500])


def signing_secrets(sub: Subscription) -> list[str]:
    """The signing secrets: the current one, and a rotated-out one until it expires."""
    keys = [sub.secret]
    expires = sub.previous_secret_expires_at
    if sub.previous_secret and expires and expires > utcnow():
        keys.append(sub.previous_secret)
    return keys


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16384):
        chunks.append(chunk)
        size += len(chunk)
        if size >= cap:
            break
    return b"".join(chunks)[:cap]


def excerpt(answer: bytes, *, public: bool) -> str | None:
    """What the delivery log keeps of an answer: at most 256 bytes, none from inside.

    An allow-listed (non-public) endpoint may be one of the operator's own services;
    keeping its answer would let a subscriber read it through the log.
    """
    if not public:
        return None
    # Cut on bytes and drop a split character: the stored text is at most 256 bytes.
    return answer[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="ignore")


def _retry_after(value: str | None) -> float | None:
    """Seconds a receiver asks us to wait (RFC 9110 §10.2.3), or None when unreadable.

    Only ASCII digits count as delay-seconds (`"²".isdigit()` is true), and dates that
    do not fit a datetime are ignored: a receiver's header never fails the worker.
    """
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(min(int(value[:12]), RETRY_AFTER_CAP_SECONDS))
    with contextlib.suppress(TypeError, ValueError, OverflowError, IndexError):
        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now().astimezone()).total_seconds())
    return None
