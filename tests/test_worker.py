"""The background worker's housekeeping job."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from app.auth.models import AuthSession, RevokedToken
from app.core.types import utcnow
from app.worker import Schedule, Worker, purge_expired_auth
from tests.factories import make_agency, make_user


async def test_purge_removes_only_expired_records(db, app):
    user = await make_user(db, app.state.auth.hashing, await make_agency(db))
    now = utcnow()
    async with db.session() as session:
        session.add(RevokedToken(jti="old", expires_at=now - timedelta(minutes=1)))
        session.add(RevokedToken(jti="live", expires_at=now + timedelta(minutes=5)))
        session.add(AuthSession(user_id=user.id, expires_at=now - timedelta(days=2)))
        session.add(AuthSession(user_id=user.id, expires_at=now + timedelta(days=2)))
        await session.commit()
    worker = Worker(db, (Schedule("purge", purge_expired_auth, 60),))
    assert await worker.run_once(worker.schedules[0]) == 2
    async with db.session() as session:
        assert [t.jti for t in (await session.exec(select(RevokedToken))).all()] == ["live"]
        left = (await session.exec(select(AuthSession))).all()
    assert len(left) == 1 and left[0].expires_at > now


async def test_worker_survives_a_failing_job(db):
    async def broken(session) -> int:
        raise RuntimeError("boom")

    worker = Worker(db, (Schedule("broken", broken, 60),))
    assert await worker.run_once(worker.schedules[0]) == 0
