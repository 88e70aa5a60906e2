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
import socket
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import service as audit
from app.core import concurrency
from app.core.config import Settings
from app.core.db import Database
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.webhooks import outbox, prepare, ssrf
from app.webhooks.delivery import claims, policy
from app.webhooks.delivery.sender import Outcome, Sender
from app.webhooks.models import Delivery, Subscription, SubscriptionStatus

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("tracewire.webhooks")


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
        self.sender = Sender(settings, resolver or ssrf.SystemResolver())
        self.name = name or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._overall = asyncio.Semaphore(settings.webhook_concurrency)
        self._per_sub: dict[uuid.UUID, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    async def aclose(self) -> None:
        """Close the outgoing connections."""
        await self.sender.aclose()

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
            await claims.release(self.db, worker=self.name)
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

    async def claim(self, limit: int) -> list[uuid.UUID]:
        """Lease up to `limit` due deliveries for this worker."""
        return await claims.claim(
            self.db,
            worker=self.name,
            limit=limit,
            lease_seconds=self.settings.webhook_lease_seconds,
        )

    async def _listen(self) -> asyncpg.Connection | None:
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
                return await self.sender.post(sub, ready.delivery, ready.body)
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
                entries.append(policy.audit_entry(delivery, sub, outcome))
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
        session.add(policy.attempt_row(delivery, outcome, worker=self.name))
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        delivery.last_latency_ms = outcome.latency_ms
        delivery.last_response = outcome.excerpt
        delivery.claimed_until = None
        decision = policy.decide(
            outcome,
            attempts=delivery.attempts,
            failures=sub.consecutive_failures,
            settings=self.settings,
            now=now,
        )
        delivery.status = decision.status
        if decision.delivered_at is not None:
            delivery.delivered_at = decision.delivered_at
        if decision.next_attempt_at is not None:
            delivery.next_attempt_at = decision.next_attempt_at
        sub.consecutive_failures = decision.consecutive_failures
        if decision.disable_reason is not None:
            await self._disable(session, sub, decision.disable_reason)
        session.add(delivery)
        session.add(sub)

    async def _disable(self, session: AsyncSession, sub: Subscription, reason: str) -> None:
        if sub.status == SubscriptionStatus.disabled:
            return
        sub.status = SubscriptionStatus.disabled
        sub.disabled_reason = reason
        concurrency.bump(sub)
        await events.record(
            session,
            EventType.subscription_disabled,
            agency_ids=[sub.agency_id],
            data={"subscription_id": str(sub.id), "reason": sub.disabled_reason},
            fan_out=False,
        )
