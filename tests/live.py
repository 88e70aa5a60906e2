"""`tracewire serve` as a real process on a free port of 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx

from tests.processes import CHEAP_HASHING, child_env, free_port

ROOT = str(Path(__file__).resolve().parents[1])  # the checkout, for `module` under tests/


@contextlib.asynccontextmanager
async def serve(
    db_url: str,
    cwd: Path,
    *,
    module: str = "app",
    args: Sequence[str] = (),
    **settings: str,
) -> AsyncIterator[str]:
    """Start `tracewire serve` on the test's database; yield its base URL once it is ready.

    `settings` are extra TRACEWIRE_* variables (without the prefix), e.g. LOG_LEVEL="WARNING";
    `{port}` in a value becomes the server's port.
    `module` runs another `-m` entry point with the same CLI (one under tests/); `args` are
    extra command-line options (e.g. `--workers 2`).
    """
    port = free_port()
    # A setting may name the port it will get: PUBLIC_URL="http://localhost:{port}".
    settings = {name: value.replace("{port}", str(port)) for name, value in settings.items()}
    env = child_env(db_url, **(CHEAP_HASHING | {"LOG_LEVEL": "WARNING"} | settings))
    if module != "app":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    server = subprocess.Popen(
        [sys.executable, "-m", module, "serve", "--port", str(port), *args], env=env, cwd=cwd
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
