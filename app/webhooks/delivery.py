"""The delivery worker: claim due deliveries, re-check access, sign, POST, record, retry.

Claims are leases (`claimed_until`): a killed worker's deliveries fall due again when
the lease ends, so every delivery is sent at least once; a retry keeps its `webhook-id`.
On PostgreSQL, claims use `FOR UPDATE SKIP LOCKED` (workers never share a delivery) and
`LISTEN/NOTIFY` wakes the workers; polling is the fallback everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import sqlalchemy as sa
import yarl
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import service as audit
from app.core import concurrency
from app.core.config import Settings
from app.core.db import Database
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.webhooks import outbox, prepare, signing, ssrf
from app.webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Subscription,
    SubscriptionStatus,
)

log = logging.getLogger("tracewire.webhooks")
RESPONSE_EXCERPT_BYTES = 256
# The longest a receiver's Retry-After may push a delivery back.
RETRY_AFTER_CAP_SECONDS = 86400


@dataclass
class Outcome:
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DeliveryWorker:
    """One worker process's delivery loop, with bounded concurrency overall and per endpoint."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        resolver: ssrf.Resolver | None = None,
        name: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.resolver = resolver or ssrf.SystemResolver()
        self.name = name or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.allow = ssrf.allow_list(settings.webhook_allow_networks)
        self._overall = asyncio.Semaphore(settings.webhook_concurrency)
        self._per_sub: dict[uuid.UUID, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

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

    # --- loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until `stop()`; in-flight deliveries finish, unstarted claims are released."""
        listener = await self._listen()
        log.info("delivery worker started", extra={"worker": self.name})
        try:
            while not self._stop.is_set():
                handled = await self.run_once()
                if handled:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wait_wake_or_stop(), timeout=self.settings.webhook_poll_seconds
                    )
        finally:
            await self._release_claims()
            if listener is not None:
                await listener.close()
            await self.aclose()
            log.info("delivery worker stopped", extra={"worker": self.name})

    async def _wait_wake_or_stop(self) -> None:
        wake = asyncio.create_task(self._wake.wait())
        stop = asyncio.create_task(self._stop.wait())
        _, pending = await asyncio.wait({wake, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    def stop(self) -> None:
        """Finish the current batch, then stop."""
        self._stop.set()

    async def run_once(self, limit: int | None = None) -> int:
        """Claim one batch of due deliveries and send them all; returns how many."""
        ids = await self.claim(limit or self.settings.webhook_concurrency)
        if ids:
            await self._deliver_batch(ids)
        return len(ids)

    async def _listen(self) -> object | None:
        if self.settings.is_sqlite:
            return None
        try:
            import asyncpg

            dsn = self.settings.database_url.get_secret_value().replace(
                "postgresql+asyncpg://", "postgresql://"
            )
            conn = await asyncpg.connect(dsn)
            await conn.add_listener(outbox.NOTIFY_CHANNEL, lambda *_: self._wake.set())
            return conn
        except (OSError, ImportError, Exception):
            log.warning("LISTEN unavailable; polling only", exc_info=True)
            return None

    # --- claims -----------------------------------------------------------------------

    async def claim(self, limit: int) -> list[uuid.UUID]:
        """Lease up to `limit` due deliveries (pending and due, or with an expired lease)."""
        now = utcnow()
        due = sa.or_(
            sa.and_(
                Delivery.status == DeliveryStatus.pending.value,
                col(Delivery.next_attempt_at) <= now,
            ),
            sa.and_(
                Delivery.status == DeliveryStatus.delivering.value,
                col(Delivery.claimed_until) < now,
            ),
        )
        query = (
            select(Delivery.id)
            .where(due)
            .order_by(col(Delivery.next_attempt_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.db.session() as session:
            ids = list((await session.exec(query)).all())
            if ids:
                await session.exec(
                    sa.update(Delivery)
                    .where(col(Delivery.id).in_(ids))
                    .values(
                        status=DeliveryStatus.delivering.value,
                        claimed_until=now + timedelta(seconds=self.settings.webhook_lease_seconds),
                        claimed_by=self.name,
                    )
                )
            await session.commit()
        return ids

    async def _release_claims(self) -> None:
        with contextlib.suppress(Exception):
            async with self.db.session() as session:
                await session.exec(
                    sa.update(Delivery)
                    .where(
                        Delivery.claimed_by == self.name,
                        Delivery.status == DeliveryStatus.delivering.value,
                    )
                    .values(status=DeliveryStatus.pending.value, claimed_until=None)
                )
                await session.commit()

    # --- one batch -------------------------------------------------------------------

    async def _deliver_batch(self, ids: list[uuid.UUID]) -> None:
        """Re-check access for the batch, send each, record every attempt in one transaction.

        Whatever goes wrong, a claimed delivery is never lost: its lease runs out and a
        later pass sends it again with the same `webhook-id`.
        """
        try:
            ready = await self._prepare(ids)
        except Exception:
            log.exception("delivery batch could not be prepared", extra={"count": len(ids)})
            return
        outcomes = await asyncio.gather(*(self._send(r) for r in ready))
        sent = [(r.delivery, r.subscription) for r in ready]
        try:
            await self._record(list(zip(sent, outcomes, strict=True)))
        except Exception:
            log.exception("delivery outcomes could not be recorded", extra={"count": len(ids)})

    async def _send(self, ready: prepare.Ready) -> Outcome:
        sub = ready.subscription
        sem = self._per_sub.setdefault(
            sub.id, asyncio.Semaphore(self.settings.webhook_concurrency_per_subscription)
        )
        try:
            async with self._overall, sem:
                return await self.post(sub, ready.delivery, ready.body)
        except Exception as exc:  # a bug in one send must not sink the batch's bookkeeping
            log.exception("delivery crashed", extra={"delivery_id": str(ready.delivery.id)})
            return Outcome(error=f"internal error: {type(exc).__name__}")

    async def _prepare(self, ids: list[uuid.UUID]) -> list[prepare.Ready]:
        """The claimed deliveries that go out now, rendered; the rest put back or cancelled."""
        async with self.db.session() as session:
            ready = await prepare.prepare(
                session,
                ids,
                worker=self.name,
                now=utcnow(),
                base_url=self.settings.public_url,
                poll_seconds=self.settings.webhook_poll_seconds,
            )
            await session.commit()  # no transaction stays open over the network calls
            return ready

    def _secrets(self, sub: Subscription) -> list[str]:
        keys = [sub.secret]
        expires = sub.previous_secret_expires_at
        if sub.previous_secret and expires and expires > utcnow():
            keys.append(sub.previous_secret)
        return keys

    async def post(self, sub: Subscription, delivery: Delivery, body: bytes) -> Outcome:
        """One signed POST to the checked address; never follows redirects or reads > cap."""
        started = time.perf_counter()
        try:
            url = ssrf.check_url_syntax(sub.url, require_https=self.settings.webhooks_need_https)
            addresses = await ssrf.resolve_and_check(url, self.resolver, self.allow)
        except ssrf.UrlRefused as exc:
            return Outcome(error=f"refused: {exc}")
        headers = signing.headers(
            self._secrets(sub), signing.message_id(delivery.id), int(time.time()), body
        )
        headers["host"] = url.netloc.decode("ascii")
        headers["user-agent"] = "Tracewire-Webhooks/1"
        headers["content-type"] = "application/json"
        # Connect to the address that was checked: no second DNS lookup to be rebound.
        target = yarl.URL(str(url.copy_with(host=addresses[0])), encoded=True)
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

    async def _record(self, results: list[tuple[tuple[Delivery, Subscription], Outcome]]) -> None:
        """Every attempt of the batch, its audit record and the retry schedule, in one commit."""
        if not results:
            return
        now = utcnow()
        async with self.db.session() as session:
            # Subscriptions first, locked in id order, as an admin's change locks them
            # (app/core/concurrency.py): a failure count is added to what the admin left,
            # never written over a re-enable made while the message was in flight.
            sub_ids = sorted({sub.id for (_, sub), _ in results})
            subs = {
                s.id: s
                for s in (
                    await session.exec(
                        concurrency.for_change(
                            select(Subscription)
                            .where(col(Subscription.id).in_(sub_ids))
                            .order_by(col(Subscription.id))
                        )
                    )
                ).all()
            }
            ids = [delivery.id for (delivery, _), _ in results]
            deliveries = {
                d.id: d
                for d in (
                    await session.exec(select(Delivery).where(col(Delivery.id).in_(ids)))
                ).all()
            }
            entries: list[audit.Entry] = []
            for (sent, sent_to), outcome in results:
                delivery, sub = deliveries.get(sent.id), subs.get(sent_to.id)
                if delivery is None or sub is None:
                    continue
                entries.append(
                    audit.Entry(
                        "delivery.attempt",
                        object_type="delivery",
                        object_id=delivery.id,
                        agency_id=sub.agency_id,
                        outcome="success" if outcome.ok else "failure",
                        details={"status_code": outcome.status_code, "error": outcome.error},
                    )
                )
                await self._apply(session, delivery, sub, outcome, now)
            await audit.record_many(session, None, entries)
            await session.commit()

    async def _apply(
        self,
        session: AsyncSession,
        delivery: Delivery,
        sub: Subscription,
        outcome: Outcome,
        now: datetime,
    ) -> None:
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                error=outcome.error,
                response_excerpt=outcome.excerpt,
                worker=self.name,
            )
        )
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        delivery.last_latency_ms = outcome.latency_ms
        delivery.last_response = outcome.excerpt
        delivery.claimed_until = None
        if outcome.ok:
            delivery.status = DeliveryStatus.delivered.value
            delivery.delivered_at = now
            sub.consecutive_failures = 0
        else:
            sub.consecutive_failures += 1
            delay = self._next_delay(delivery.attempts, outcome)
            if outcome.status_code == 410 or delay is None:
                delivery.status = DeliveryStatus.failed.value
            else:
                delivery.status = DeliveryStatus.pending.value
                delivery.next_attempt_at = now + timedelta(seconds=delay)
            limit = self.settings.webhook_disable_after_failures
            if outcome.status_code == 410 or sub.consecutive_failures >= limit:
                await self._disable(session, sub, outcome)
        session.add(delivery)
        session.add(sub)

    def _next_delay(self, attempts: int, outcome: Outcome) -> float | None:
        schedule = self.settings.webhook_retry_schedule
        if attempts > len(schedule):
            return None
        delay = schedule[attempts - 1] * (1 + random.random() * 0.2)  # noqa: S311 - jitter
        if outcome.retry_after is not None and outcome.status_code in (429, 503):
            delay = max(delay, min(outcome.retry_after, RETRY_AFTER_CAP_SECONDS))
        return delay

    async def _disable(self, session: AsyncSession, sub: Subscription, outcome: Outcome) -> None:
        if sub.status == SubscriptionStatus.disabled:
            return
        sub.status = SubscriptionStatus.disabled.value
        sub.disabled_reason = (
            "410 Gone" if outcome.status_code == 410 else f"{sub.consecutive_failures} failures"
        )
        concurrency.bump(sub)
        await events.record(
            session,
            EventType.subscription_disabled,
            agency_ids=[sub.agency_id],
            data={"subscription_id": str(sub.id), "reason": sub.disabled_reason},
            fan_out=False,
        )


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
