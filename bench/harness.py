"""What every scenario shares: databases, server processes, the load driver, figures.

Everything talks to 127.0.0.1 only, every load is bounded in count and in time, and every
process a scenario starts is stopped when it ends (even on Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import httpx

from app.core import migrate
from app.core.db import Database, create_engine
from tests.conftest import TEST_AUDIT_SIGNING_KEY, settings_for
from tests.processes import child_env, free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def fresh_database(server: str, name: str) -> str:
    """Drop and re-create database `name`, apply the migrations; its SQLAlchemy URL."""
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = asyncpg_url(f"{server}/{name}")
    engine = create_engine(settings_for(url))
    await migrate.upgrade(engine)
    await engine.dispose()
    return url


def database(url: str) -> Database:
    """An in-process handle on the bench database, for set-up and checks."""
    return Database(settings_for(url))


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `tracewire serve` / `worker` process under benchmark."""
    env = child_env(
        database_url,
        AUDIT_SIGNING_KEY=TEST_AUDIT_SIGNING_KEY,
        LOG_LEVEL="WARNING",
        RATE_LIMIT_PER_MINUTE="0",
        TOKEN_RATE_LIMIT_PER_MINUTE="0",
        # Where a scenario's receiver listens; scenarios that deliver name its port.
        WEBHOOK_ALLOW_NETWORKS="127.0.0.1:9",
        WEBHOOK_REQUIRE_HTTPS="false",
        WORKER_IN_PROCESS="false",
        DATABASE_POOL_SIZE="20",
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    """A child process under benchmark and what it cost."""

    name: str
    popen: subprocess.Popen[bytes]
    base_url: str = ""

    def peak_rss_mb(self) -> float:
        """Peak resident set size so far (VmHWM), in MiB."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far."""
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return float("nan")


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """Children started into the yielded list are terminated (then killed) on exit."""
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.popen.kill()


def start_api(procs: list[Proc], env: dict[str, str], name: str = "api", cwd: Path = ROOT) -> Proc:
    """`tracewire serve` (one uvicorn process) on a free port, from the checkout at `cwd`."""
    port = free_port()
    popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "app", "serve", "--port", str(port)], env=env, cwd=cwd
    )
    proc = Proc(name, popen, f"http://127.0.0.1:{port}")
    procs.append(proc)
    return proc


def start_worker(procs: list[Proc], env: dict[str, str], name: str = "worker") -> Proc:
    """`tracewire worker` (jobs + webhook deliveries)."""
    popen = subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env, cwd=ROOT)
    proc = Proc(name, popen)
    procs.append(proc)
    return proc


async def wait_ready(proc: Proc, path: str = "/readyz", within: float = 60) -> None:
    """Until the process answers 200 on `path` (at most `within` seconds)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=5) as http:
        while True:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(path)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} not ready after {within} s")
            await asyncio.sleep(0.2)


async def client_token(base_url: str, client_id: str, secret: str) -> str:
    """An access token for an API client (OAuth2 client credentials)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        answer = await http.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        answer.raise_for_status()
        return answer.json()["access_token"]


# --- the load driver -----------------------------------------------------------------------


@dataclass
class Load:
    """Latencies (ms) and statuses of one bounded run."""

    label: str
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if s.startswith("2"))

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.ok

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)

    def row(self) -> str:
        return (
            f"| {self.label} | {self.concurrency} | {sum(self.statuses.values())} "
            f"| {self.throughput:,.0f} | {self.pct(50):.1f} | {self.pct(95):.1f} "
            f"| {self.pct(99):.1f} | {self.errors} |"
        )


LOAD_HEADER = (
    "| endpoint | clients | requests | ok/s | p50 ms | p95 ms | p99 ms | errors |\n"
    "|---|---|---|---|---|---|---|---|"
)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Http:
    """A keep-alive aiohttp client on one base URL (httpx's pool could not keep up here)."""

    def __init__(self, base_url: str, connections: int = 100) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=60),
            trust_env=False,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """(status, body) of one request."""
        async with self.session.request(
            method, self.base_url + path, data=body, params=params, headers=headers
        ) as answer:
            return answer.status, await answer.read()

    async def close(self) -> None:
        await self.session.close()


Request = Callable[[Http, int], Awaitable[int]]


async def drive(
    label: str,
    base_urls: list[str],
    request: Request,
    *,
    concurrency: int,
    total: int,
    max_seconds: float,
    warmup: int = 0,
) -> Load:
    """`concurrency` clients send `total` requests (or stop after `max_seconds`)."""
    load = Load(label, concurrency)
    clients = [Http(url, concurrency) for url in base_urls]
    deadline = time.monotonic() + max_seconds

    async def one_client(slot: int, counter: Iterator[int]) -> None:
        http = clients[slot % len(clients)]
        for n in counter:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                status = str(await request(http, n))
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            if n >= warmup:
                load.latencies.append((time.perf_counter() - started) * 1000)
                load.statuses[status] += 1

    try:
        if warmup:  # connections opened, caches filled; not counted
            counter = iter(range(warmup))
            await asyncio.gather(*(one_client(i, counter) for i in range(concurrency)))
        counter = iter(range(warmup, warmup + total))
        started = time.perf_counter()
        await asyncio.gather(*(one_client(i, counter) for i in range(concurrency)))
        load.seconds = time.perf_counter() - started
    finally:
        for http in clients:
            await http.close()
    return load


# --- reporting -----------------------------------------------------------------------------


def machine() -> str:
    """One line on where and with what a figure was measured."""
    import fastapi
    import sqlalchemy

    cpus = os.cpu_count()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {cpus} cores; "
        f"Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, uvicorn + uvloop + httptools"
    )


async def postgres_version(server: str) -> str:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        return (await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


def ms(values: list[float]) -> str:
    """'p50 / p99' of millisecond figures."""
    return f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f}"


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


@contextlib.asynccontextmanager
async def timed(label: str) -> AsyncIterator[None]:
    """Print how long a set-up step took."""
    started = time.perf_counter()
    yield
    print(f"  {label}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
