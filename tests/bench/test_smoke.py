"""Each benchmark scenario runs end to end on tiny sizes (no timing is asserted).

They start real processes on 127.0.0.1 against the PostgreSQL of the run, with
databases of their own that are dropped afterwards.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.processes import inherited_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(postgres_database: str) -> str:
    """The PostgreSQL server of the run, as a plain URL without a database."""
    url = postgres_database.replace("postgresql+asyncpg://", "postgresql://")
    return url.rsplit("/", 1)[0]


@pytest.fixture
def database(server: str) -> Iterator[str]:
    name = f"tracewire_bench_smoke_{secrets.token_hex(3)}"
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def bench(*args: str, within: float = 240) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=inherited_env(),  # each scenario names its processes' settings itself
        capture_output=True,
        text=True,
        timeout=within,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_ingest(server: str, database: str) -> None:
    out = bench(
        "bench.ingest",
        *("--server", server, "--database", database, "--clients", "1", "4"),
        *("--requests", "20", "--seconds", "10", "--agencies", "2"),
    )
    created = int(re.search(r"Answered 201: ([\d,]+)", out)[1].replace(",", ""))
    assert created > 0
    assert "(lost: 0)" in out
    assert f"outbox rows: {10 * created:,} (expected {10 * created:,})" in out


def test_webhooks(server: str, database: str) -> None:
    out = bench(
        "bench.webhooks",
        *("--server", server, "--database", database, "--workers", "1"),
        *("--alerts", "3", "--seconds", "2"),
    )
    row = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "30"  # 3 alerts x 10 subscriptions, all verified by the receiver
    assert cells[7] == "0 (0)" and cells[8] == "0"  # no duplicates, no bad signature


def test_scaleout(server: str, database: str) -> None:
    out = bench(
        "bench.scaleout",
        *("--server", server, "--database", database, "--layouts", "1x1"),
        *("--clients", "4", "--seconds", "3"),
    )
    row = next(line for line in out.splitlines() if line.startswith("| 1 + 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    created, stored, received, expected = (int(c.replace(",", "")) for c in cells[3:7])
    assert created == stored > 0
    assert received == expected == 10 * stored
    assert cells[7].endswith("(0)")


def test_generate_then_query(server: str, database: str) -> None:
    out = bench(
        "bench.generate",
        *("--url", f"{server}/{database}", "--alerts", "3000", "--agencies", "40"),
        "--groups",
        "5",
    )
    agencies = re.findall(r"visibility agency: ([0-9a-f-]{36})", out)
    assert len(agencies) == 2
    report = bench(
        "bench.query",
        *("--server", server, "--database", database, "--runs", "3", "--seconds", "2"),
        *("--agency", agencies[0], "--agency", agencies[1]),
    )
    rows = [line for line in report.splitlines() if line.startswith(f"| {agencies[1][:8]} |")]
    assert len(rows) == 7  # six queries and the second page
    load = next(line for line in report.splitlines() if line.startswith("| GET /api/v1/alerts |"))
    cells = [c.strip() for c in load.strip("|").split("|")]
    assert int(cells[2].replace(",", "")) > 0 and cells[7] == "0"  # answers, and no errors


def test_audited_reads(server: str, database: str) -> None:
    out = bench(
        "bench.audit",
        *("--server", server, "--database", database, "--clients", "4"),
        *("--seconds", "1", "--alerts", "3"),
    )
    row = next(line for line in out.splitlines() if line.startswith("| GET /api/v1/alerts"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert int(cells[2].replace(",", "")) > 0 and cells[7] == "0"  # answers, and no errors
    pages = int(
        re.search(r"Pages answered 200 \(with warm-up\): ([\d,]+)", out)[1].replace(",", "")
    )
    assert f"new `alert.list` records: {pages:,};" in out
    assert "(gap-free: yes), not linked: 0." in out
    assert "audit chain intact" in out


def test_statements(server: str, database: str) -> None:
    out = bench("bench.statements", "--posts", "3", "--database-url", f"{server}/{database}")
    row = next(line for line in out.splitlines() if line.startswith("| 3 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3"  # every post answered 201
    assert float(cells[7]) > 0 and float(cells[9]) > 0  # statements counted, CPU measured


def test_floor(server: str, database: str) -> None:
    out = bench(
        "bench.floor",
        *("--requests", "3", "--rounds", "2", "--database-url", f"{server}/{database}"),
    )
    rows = [line for line in out.splitlines() if line.startswith("| ") and "request |" not in line]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [c[0] for c in cells] == [
        "bare GET /ok",
        "GET /healthz",
        "GET /api/v1/me",
        "POST /api/v1/alerts",
    ]
    assert all(len(c[1].split(", ")) == 2 and float(c[2]) > 0 for c in cells)  # two rounds each


def test_batch(server: str, database: str) -> None:
    out = bench(
        "bench.batch",
        *("--alerts", "4", "--size", "3", "--rounds", "1"),
        *("--database-url", f"{server}/{database}"),
    )
    rows = [line for line in out.splitlines() if line.startswith("| ") and "alerts" not in line]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [c[0] for c in cells] == ["one per request", "batches of 3"]
    assert all(c[1] == c[2] == "4" for c in cells)  # every alert stored, both ways
    assert all(float(c[5]) > 0 for c in cells)  # statements counted


def test_pages(server: str, database: str, tmp_path: Path) -> None:
    for url in (f"{server}/{database}", f"sqlite:///{tmp_path / 'pages.db'}"):
        out = bench(
            *("bench.pages", "--alerts", "8", "--pages", "3", "--limit", "3"),
            *("--database-url", url),
        )
        row = next(line for line in out.splitlines() if line.startswith("| 3 |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "3"  # every page answered 200
        assert float(cells[7]) > 0 and float(cells[8]) > 0  # statements counted, CPU measured
        assert "2 own, 2 content, 2 reference, 2 tombstone" in out  # every view on the pages
