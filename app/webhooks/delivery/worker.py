"""The delivery worker: claim due deliveries, re-check access, sign, POST, record, retry.

Claims are leases (`claimed_until`): a killed worker's deliveries fall due again when
the lease ends, so every delivery is sent at least once; a retry keeps its `webhook-id`.
On PostgreSQL, claims use `FOR UPDATE SKIP LOCKED` (workers never share a delivery) and
`LISTEN/NOTIFY` wakes the workers; polling is the fallback everywhere.

`run()` is a pipeline: the next batch is claimed and prepared while the last one is being
sent, and a recorder writes the outcomes as they come, many per transaction. At most a
batch more than the claimers are held (claimed, not yet recorded) at a time, so a lease
never waits long on a queue.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import TYPE_CHECKING

from app.core.config import Settings
from app.core.db import Database
from app.core.types import utcnow
from app.webhooks import outbox, prepare, ssrf
from app.webhooks.delivery import claims, record
from app.webhooks.delivery.record import Sent
from app.webhooks.delivery.sender import Outcome, Sender

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("tracewire.webhooks")
# The most outcomes one recording transaction takes.
RECORD_MAX = 512


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
        self._batch = settings.webhook_concurrency
        # Claimers take turns on the database while batches are sent: two on PostgreSQL
        # (SKIP LOCKED keeps their claims apart), one on SQLite (one writer anyway).
        self._claimers = 1 if settings.is_sqlite else 2
        self._most_held = self._batch * (self._claimers + 1)
        # Claimed and not yet recorded (nor put back); `_room` is set as that falls.
        self._held = 0
        self._room = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._results: asyncio.Queue[Sent | None] = asyncio.Queue()

    async def aclose(self) -> None:
        """Close the outgoing connections."""
        await self.sender.aclose()

    # --- loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until `stop()`; in-flight deliveries finish, unstarted claims are released."""
        listener = await self._listen()
        recorder = asyncio.create_task(self._recorder())
        claimers = [asyncio.create_task(self._claimer()) for _ in range(self._claimers)]
        log.info("delivery worker started", extra={"worker": self.name})
        try:
            await asyncio.gather(*claimers)
        finally:
            for task in claimers:
                task.cancel()
            await asyncio.gather(*claimers, return_exceptions=True)
            await asyncio.gather(*self._sending, return_exceptions=True)
            self._results.put_nowait(None)
            await recorder
            await claims.release(self.db, worker=self.name)
            if listener is not None:
                await listener.close()
            await self.aclose()
            log.info("delivery worker stopped", extra={"worker": self.name})

    async def _claimer(self) -> None:
        """Claim, prepare and start batches while there is room, until `stop()`."""
        while not self._stop.is_set():
            if self._held + self._batch > self._most_held:
                self._room.clear()
                await self._wait_for(self._room)
                continue
            try:
                started = await self._claim_and_start(self._batch)
            except Exception:  # the database went away (a restart, a dead path): claim again
                log.exception("deliveries could not be claimed", extra={"worker": self.name})
                started = 0
            if started:
                continue
            self._wake.clear()
            await self._wait_for(self._wake, seconds=self.settings.webhook_poll_seconds)

    async def _wait_for(self, event: asyncio.Event, seconds: float | None = None) -> None:
        """Until `event` or `stop()`, or `seconds` pass."""
        waits = {asyncio.create_task(event.wait()), asyncio.create_task(self._stop.wait())}
        _, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    def stop(self) -> None:
        """Finish the deliveries being sent, record them, then stop."""
        self._stop.set()

    async def run_once(self, limit: int | None = None) -> int:
        """Claim one batch of due deliveries, send them all and record them; returns how many."""
        ids = await self.claim(limit or self.settings.webhook_concurrency)
        if ids:
            ready = await self._prepare_or_log(ids)
            outcomes = await asyncio.gather(*(self._send(r) for r in ready))
            await self._record(
                [
                    Sent(r.delivery.id, r.subscription.id, outcome)
                    for r, outcome in zip(ready, outcomes, strict=True)
                    if outcome is not None
                ]
            )
        return len(ids)

    async def _claim_and_start(self, limit: int) -> int:
        """Claim and prepare up to `limit` deliveries and start sending them; how many."""
        self._held += limit  # taken before the claim, so that claimers never overshoot
        try:
            ids = await self.claim(limit)
        finally:
            self._held -= limit
        if not ids:
            return 0
        self._held += len(ids)
        ready = await self._prepare_or_log(ids)
        self._held -= len(ids) - len(ready)  # put back, cancelled, or left to their lease
        for one in ready:
            task = asyncio.create_task(self._send_then_queue(one))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return len(ids)

    async def _send_then_queue(self, ready: prepare.Ready) -> None:
        outcome = await self._send(ready, unless_stopping=True)
        if outcome is None:  # stopping: not sent, released with the other unsent claims
            self._held -= 1
            self._room.set()
            return
        self._results.put_nowait(Sent(ready.delivery.id, ready.subscription.id, outcome))

    async def _recorder(self) -> None:
        """Record outcomes as they come, all that are waiting in one transaction."""
        done = False
        while not done:
            first = await self._results.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < RECORD_MAX and not self._results.empty():
                item = self._results.get_nowait()
                if item is None:
                    done = True
                    break
                batch.append(item)
            await self._record(batch)
            self._held -= len(batch)
            self._room.set()

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

    async def _prepare_or_log(self, ids: list[uuid.UUID]) -> list[prepare.Ready]:
        """The claimed deliveries to send now; none when that cannot be decided.

        Whatever goes wrong, a claimed delivery is never lost: its lease runs out and a
        later pass sends it again with the same `webhook-id`.
        """
        try:
            return await self._prepare(ids)
        except Exception:
            log.exception("delivery batch could not be prepared", extra={"count": len(ids)})
            return []

    async def _send(self, ready: prepare.Ready, *, unless_stopping: bool = False) -> Outcome | None:
        sub = ready.subscription
        sem = self._per_sub.setdefault(
            sub.id, asyncio.Semaphore(self.settings.webhook_concurrency_per_subscription)
        )
        try:
            async with self._overall, sem:
                if unless_stopping and self._stop.is_set():
                    return None
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

    async def _record(self, sent: list[Sent]) -> None:
        """Every attempt, its audit record and the retry schedule, in one commit."""
        try:
            await record.record(self.db, sent, worker=self.name, settings=self.settings)
        except Exception:
            log.exception("delivery outcomes could not be recorded", extra={"count": len(sent)})
