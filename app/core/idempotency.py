"""`Idempotency-Key` on POST: a repeat does nothing again and answers as the first did.

The repeat gets the first answer's status and the object it made or changed, read again
through the route's own read path under the caller's rights *now* (`reread`): never the
stored body, which may hold content the caller may no longer see (the alert withdrawn
or re-marked since, the token down-scoped, the role lowered). A caller that may no longer
read the object gets that read path's refusal.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import JSON, Column, Field, SQLModel, col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, InvalidInput
from app.core.types import UTCDateTime, utcnow

KEY_HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 200

IdempotencyKey = Annotated[
    str | None,
    Header(alias=KEY_HEADER, description="Repeat a POST safely: the first answer is replayed."),
]


class Caller(Protocol):
    """Whoever keyed the POST (a principal); core knows it only by its id."""

    @property
    def id(self) -> uuid.UUID: ...


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a keyed POST, per principal and key, kept for a day."""

    __tablename__ = "idempotency_record"

    principal_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    fingerprint: str = Field(max_length=64)
    status_code: int
    body: Any = Field(sa_column=Column(JSON, nullable=True))
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


async def idempotent(
    session: AsyncSession,
    principal: Caller,
    request: Request,
    key: str | None,
    *,
    status_code: int,
    run: Callable[[], Awaitable[Any]],
    reread: Callable[[Any], Awaitable[Any]],
    headers_of: Callable[[Any], dict[str, str]] | None = None,
) -> JSONResponse:
    """Run `run()` once per (principal, key); answer a repeat with `reread(first_body)`."""
    if key is not None and (not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable()):
        raise InvalidInput.on(
            KEY_HEADER, f"1 to {MAX_KEY_LENGTH} printable characters", location="header"
        )
    fingerprint = ""
    if key is not None:
        fingerprint = _fingerprint(request.method, request.url.path, await request.body())
        stored = await _claim(session, principal.id, key, fingerprint)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise InvalidInput.on(
                    KEY_HEADER,
                    "this key was already used for a different request",
                    "idempotency-key-reused",
                    location="header",
                )
            current = await reread(stored.body)
            fresh = headers_of(current) if headers_of else {}
            return JSONResponse(
                _json_body(current),
                status_code=stored.status_code,
                headers={**stored.headers, **fresh, "Idempotent-Replayed": "true"},
            )
    result = await run()
    body = _json_body(result)
    headers = headers_of(result) if headers_of else {}
    if key is not None:
        mine = await session.get(IdempotencyRecord, (principal.id, key))
        assert mine is not None  # claimed above, in this transaction
        mine.status_code, mine.body, mine.headers = status_code, body, headers
        session.add(mine)
        await session.flush()
    return JSONResponse(body, status_code=status_code, headers=headers)


def _json_body(result: Any) -> Any:
    """The answer as JSON values. A model is dumped by pydantic in one pass, as
    `jsonable_encoder` would (it dumps, then walks the dump again: a tenth of a
    500-alert batch's CPU)."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    return jsonable_encoder(result)


async def _claim(
    session: AsyncSession, principal_id: uuid.UUID, key: str, fingerprint: str
) -> IdempotencyRecord | None:
    """Take `key` for this request (None), or the first request's record to replay.

    The key is taken before the request runs: a second request with the same key at the
    same time waits on it (PostgreSQL: the unique index, then the row lock; SQLite: the
    single writer) and then replays the first one's answer, or takes the key itself if
    the first one failed and left nothing.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for _ in range(3):
        taken = await session.exec(
            insert(IdempotencyRecord)
            .values(
                principal_id=principal_id,
                key=key,
                fingerprint=fingerprint,
                status_code=0,
                body=None,
                headers={},
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["principal_id", "key"])
        )
        if taken.rowcount:
            return None
        query = (
            select(IdempotencyRecord)
            .where(IdempotencyRecord.principal_id == principal_id, IdempotencyRecord.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        stored = (await session.exec(query)).first()
        if stored is None:
            continue  # the first request failed: nothing to replay, the key is free
        if stored.created_at > utcnow() - RETENTION:
            return stored
        await session.delete(stored)  # expired: the key may be used afresh
        await session.flush()
    raise Conflict("This Idempotency-Key is in use by another request; repeat it.")


def _fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def purge_idempotency_records(session: AsyncSession) -> int:
    """Forget answers older than the retention period (a worker job)."""
    result = await session.exec(
        delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < utcnow() - RETENTION)
    )
    return result.rowcount or 0
