"""`tracewire serve` as a real process on a free port of 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.conftest import TEST_JWT_SECRET

ROOT = str(Path(__file__).resolve().parents[1])  # the checkout, for `module` under tests/


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(
    db_url: str, cwd: Path, *, module: str = "app", **settings: str
) -> AsyncIterator[str]:
    """Start `tracewire serve` on the test's database; yield its base URL once it is ready.

    `settings` are extra TRACEWIRE_* variables (without the prefix), e.g. LOG_LEVEL="WARNING".
    `module` runs another `-m` entry point with the same CLI (one under tests/).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    if module != "app":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env.update(
        TRACEWIRE_DATABASE_URL=db_url,
        TRACEWIRE_ENVIRONMENT="test",
        TRACEWIRE_JWT_SECRET=TEST_JWT_SECRET,
        TRACEWIRE_PASSWORD_HASH_MEMORY_KIB="1024",
        TRACEWIRE_PASSWORD_HASH_TIME_COST="1",
        TRACEWIRE_LOG_LEVEL="WARNING",
    )
    env.update({f"TRACEWIRE_{name}": value for name, value in settings.items()})
    server = subprocess.Popen(
        [sys.executable, "-m", module, "serve", "--port", str(port)], env=env, cwd=cwd
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                assert time.monotonic() < deadline and server.poll() is None, "server not ready"
                await asyncio.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
