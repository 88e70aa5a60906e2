"""Faults, bounded in count and time: a worker killed mid-batch, and two workers at once.

Every delivery must arrive at least once, duplicates must share their `webhook-id`,
and nothing may arrive that was not queued.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import pytest
from sqlmodel import select

from app.authz.principal import Role
from app.core.db import Database
from app.webhooks.delivery.worker import DeliveryWorker
from app.webhooks.models import Delivery
from app.webhooks.signing import message_id
from tests.factories import make_actor, make_agency, post_alert, seizure_body
from tests.processes import child_env, free_port
from tests.webhooks.receiver import Receiver

ALERTS = 24
DEADLINE = 90.0


@pytest.fixture
def port() -> int:
    """The receiver's port, chosen first: the allow-list names it."""
    return free_port()


@pytest.fixture
def settings(settings, port):
    return settings.model_copy(
        update={
            "webhook_allow_networks": [f"127.0.0.1:{port}"],
            "webhook_require_https": False,
            "webhook_retry_schedule": [0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
            "webhook_poll_seconds": 0.1,
            "webhook_lease_seconds": 5,
            "webhook_concurrency": 4,
        }
    )


async def _queue(client, db, app, receiver: Receiver) -> set[str]:
    hashing = app.state.auth.hashing
    ke = await make_actor(
        client, db, hashing, await make_agency(db, country="KE"), Role.focal_point
    )
    de_admin = await make_actor(
        client, db, hashing, await make_agency(db, country="DE"), Role.agency_admin
    )
    answer = await client.post(
        "/api/v1/subscriptions", json={"url": receiver.url}, headers=de_admin.headers
    )
    assert answer.status_code == 201
    for i in range(ALERTS):
        await post_alert(client, ke, seizure_body(title=f"Seizure {i}"))
    async with db.session() as session:
        rows = (await session.exec(select(Delivery))).all()
    assert len(rows) == ALERTS
    return {message_id(d.id) for d in rows}


def _worker_env(db_url: str, port: int) -> dict[str, str]:
    return child_env(
        db_url,
        WEBHOOK_ALLOW_NETWORKS=f"127.0.0.1:{port}",
        WEBHOOK_REQUIRE_HTTPS="false",
        WEBHOOK_LEASE_SECONDS="5",
        WEBHOOK_POLL_SECONDS="0.1",
        WEBHOOK_CONCURRENCY="4",
        WEBHOOK_RETRY_SCHEDULE="0.2,0.2,0.2,0.2,0.2,0.2",
        LOG_LEVEL="WARNING",
    )


async def _wait_for(predicate, timeout: float = DEADLINE) -> None:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


async def _wait_for_all_delivered(db: Database) -> None:
    started = time.monotonic()
    while True:
        async with db.session() as session:
            states = {d.status for d in (await session.exec(select(Delivery))).all()}
        if states == {"delivered"}:
            return
        if time.monotonic() - started > DEADLINE:
            raise AssertionError(f"timed out with deliveries {states}")
        await asyncio.sleep(0.2)


async def test_worker_killed_mid_batch_loses_nothing(client, db, app, db_url, settings, port):
    receiver = Receiver(port=port, delay=0.3)  # slow answers keep deliveries in flight
    await receiver.start()
    try:
        expected = await _queue(client, db, app, receiver)
        env = _worker_env(db_url, port)
        first = subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env)
        try:
            await _wait_for(lambda: len(receiver.received) >= 6)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = len(receiver.received)
        second = subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env)
        try:
            # The killed worker's leases expire, then the second worker sends those again.
            await _wait_for_all_delivered(db)
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        await receiver.stop()
    ids = receiver.ids()
    duplicates = len(ids) - len(set(ids))
    lost = expected - set(ids)
    print(  # the closing note quotes these figures
        f"\nkill test: queued={len(expected)} received={len(ids)} unique={len(set(ids))} "
        f"duplicates={duplicates} lost={len(lost)} received_before_kill={killed_at}"
    )
    assert lost == set()
    assert set(ids) <= expected  # nothing arrived that was not queued
    async with db.session() as session:
        states = {d.status for d in (await session.exec(select(Delivery))).all()}
    assert states == {"delivered"}


async def test_two_workers_never_send_the_same_delivery(client, db, app, settings, backend, port):
    if backend != "postgres":
        pytest.skip("SKIP LOCKED claims are the PostgreSQL path; SQLite runs one writer")
    receiver = Receiver(port=port)
    await receiver.start()
    databases = [Database(settings), Database(settings)]
    workers = [DeliveryWorker(d, settings, name=f"w{i}") for i, d in enumerate(databases)]
    try:
        expected = await _queue(client, db, app, receiver)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        await _wait_for(lambda: set(receiver.ids()) >= expected)
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
    finally:
        await receiver.stop()
        for d in databases:
            await d.dispose()
    ids = receiver.ids()
    assert sorted(ids) == sorted(expected)  # each exactly once
    async with db.session() as session:
        by = {d.claimed_by for d in (await session.exec(select(Delivery))).all()}
    assert by <= {"w0", "w1"}
