"""Async engine, sessions and the one-transaction-per-request dependency."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """An async engine for the configured database, tuned per backend."""
    url = settings.database_url.get_secret_value()
    kwargs: dict[str, Any] = {"echo": settings.database_echo}
    if url.startswith("sqlite"):
        # One file, many readers, one writer: WAL and a busy timeout keep writers queued
        # instead of failing with "database is locked".
        kwargs["connect_args"] = {"timeout": 30}
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.update(
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_recycle=1800,
    )
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "connect", _opened)
    event.listen(engine.sync_engine, "checkout", _check_alive)
    return engine


PING_TIMEOUT_S = 5.0
_OPENED = "tracewire.opened"


def _opened(_dbapi_connection: Any, record: Any) -> None:
    record.info[_OPENED] = True  # its first checkout follows: no ping needed


def _check_alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection answers `SELECT 1` before a request gets it; one that
    does not is replaced (the pool retries the checkout on `DisconnectionError`).

    Instead of `pool_pre_ping`, which on asyncpg costs three round trips per checkout
    (BEGIN, an empty statement, ROLLBACK). A socket the server closed (a restart,
    `pg_terminate_backend`) is seen without any; a path that died silently (a NAT or load
    balancer that forgot the flow) only by sending, hence the ping, bounded in time. A
    connection the pool has just opened is handed out without one, as pre-ping did.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is None or record.info.pop(_OPENED, False):
        return
    if driver.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")
    try:
        await_(driver.execute("SELECT 1", timeout=PING_TIMEOUT_S))
    except Exception as error:  # any failure to answer: not a connection to hand out
        raise exc.DisconnectionError("this pooled connection did not answer") from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # Let SQLAlchemy, not the driver, decide where transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    # The driver would begin lazily, before the first write only, so reads would run
    # outside the transaction and a read-then-write one could fail to upgrade its lock.
    # BEGIN IMMEDIATE takes the single writer slot up front; busy_timeout queues the rest.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# `session.info` key, present only while `Session.commit()` runs: a list where a module may
# queue async steps (taking the session) to run once the transaction has committed and its
# connection is back in the pool. A commit made another way (`async with session.begin()`)
# has no such list, and the module must do the work before the commit instead.
AFTER_COMMIT = "tracewire.after_commit"
AfterCommitStep = Callable[[AsyncSession], Awaitable[None]]


class Session(AsyncSession):
    """An AsyncSession whose `commit()` runs the steps queued under `AFTER_COMMIT`."""

    async def commit(self) -> None:
        """Commit, then run the queued steps."""
        steps: list[AfterCommitStep] = []
        self.info[AFTER_COMMIT] = steps
        try:
            await super().commit()
        finally:
            self.info.pop(AFTER_COMMIT, None)
        for step in steps:
            await step(self)


# `session.info` key: the settings of the Database that opened the session, so of the app,
# worker or CLI command it serves (`settings_of`).
SETTINGS = "tracewire.settings"


class Database:
    """The engine and session factory one process shares."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(
            self.engine,
            class_=Session,
            expire_on_commit=False,
            autoflush=False,
            info={SETTINGS: settings},
        )

    def session(self) -> AsyncSession:
        """A new session; the caller commits."""
        return self.sessionmaker()

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Let the background work on this engine end, then close every pooled connection.
        From now on work that would go to the background is waited for (`closing`)."""
        _closing.add(self.engine.sync_engine)
        await settle(self.engine)
        await self.engine.dispose()


# Work a commit sets off that its answer need not wait for (linking the audit records it
# wrote): the tasks in flight per engine, so that disposing of the engine (a shutdown) waits
# for them instead of cutting them off, and a reader can wait for what this process started.
_background: weakref.WeakKeyDictionary[Engine, set[asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


def spawn(engine: AsyncEngine, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run `work` in the background, tracked under `engine` until it ends."""
    tasks = _background.setdefault(engine.sync_engine, set())
    task = asyncio.get_running_loop().create_task(work)
    tasks.add(task)  # a reference: the loop keeps only a weak one
    task.add_done_callback(tasks.discard)
    return task


async def settle(engine: AsyncEngine) -> None:
    """Wait until the background work started on `engine` in this event loop has ended."""
    loop = asyncio.get_running_loop()
    while pending := [
        t for t in _background.get(engine.sync_engine, ()) if t.get_loop() is loop and not t.done()
    ]:
        await asyncio.gather(*pending, return_exceptions=True)


# Engines whose Database is being disposed of (set by `Database.dispose`).
_closing: weakref.WeakSet[Engine] = weakref.WeakSet()


def closing(engine: AsyncEngine) -> bool:
    """Whether `engine` is being disposed of: a commit waits for its work instead of
    leaving it to a background task that the process may not live to finish."""
    return engine.sync_engine in _closing


def settings_of(session: AsyncSession) -> Settings:
    """The settings of the app (worker, CLI command) whose Database opened `session`.

    A service deep in a change (a trace request's deadlines, started by publishing its
    alert) reads them here rather than from the environment, which `create_app(settings)`
    may not describe.
    """
    settings = session.info.get(SETTINGS)
    if not isinstance(settings, Settings):
        raise RuntimeError("this session was not opened by a Database: it has no settings")
    return settings


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit on success, roll back on any error.

    Function-scoped, so the commit happens before the answer is sent: a failed commit
    turns into an error answer, never into a 201 for something that was not stored.
    """
    database: Database = request.app.state.db
    async with database.session() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
