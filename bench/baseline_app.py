"""The ceiling: a bare FastAPI app that stores the posted JSON as one row, nothing else.

No authentication, no validation, no sharing, no audit, no outbox: the same uvicorn, the
same database, the same body. `uvicorn bench.baseline_app:app`, database URL in
BENCH_BASELINE_URL (a plain `postgresql://` URL for asyncpg).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request

TABLE = """CREATE TABLE IF NOT EXISTS bench_bare (
    id uuid PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["BENCH_BASELINE_URL"], min_size=4, max_size=20)
    await pool.execute(TABLE)
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/bare", status_code=201)
async def bare_insert(request: Request) -> dict[str, str]:
    """Insert the body as it came."""
    row_id = uuid.uuid4()
    await request.app.state.pool.execute(
        "INSERT INTO bench_bare (id, body) VALUES ($1, $2::jsonb)",
        row_id,
        (await request.body()).decode(),
    )
    return {"id": str(row_id)}


@app.get("/ok")
async def ok() -> dict[str, bool]:
    """Nothing at all."""
    return {"ok": True}
