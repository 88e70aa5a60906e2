"""Scenario 6, audited reads: clients listing alerts (each page an audit record) at once.

    python -m bench.audit [--clients 16] [--seconds 20] [--app-root DIR] [--apis 1]

Seeds the demo population with the checkout under test (`--app-root`, default this one:
point it at an export of another commit to measure the code before a change; the load,
the figures and the checks stay this checkout's), posts `--alerts` community alerts over
HTTP, then for `--seconds` each: `--clients` clients list 50 alerts a page (authenticated,
sharing-filtered, one audit record per page), the same clients on `GET /api/v1/me`
(authenticated, not audited), and the bare app's `GET /ok` and `POST /bare` (one row) as
the ceiling of the same run. Afterwards it checks that every page answered 200 left its
record in the chain, gap-free, and runs that checkout's `tracewire audit verify`.

Then the append alone, without HTTP: `--append-processes` processes of that checkout, each
with `--clients` concurrent transactions that append one audit record (`audit.record`) and
commit, for `--seconds`; against the same loop inserting one plain row per transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import asyncpg

from app.seed.demo import DEMO_DOMAIN, DEMO_PASSWORD
from bench.harness import (
    DEFAULT_PG,
    LOAD_HEADER,
    ROOT,
    Http,
    Load,
    Request,
    drive,
    machine,
    postgres_version,
    processes,
    service_env,
    start_api,
    wait_ready,
)
from bench.ingest import start_baseline
from tests.factories import seizure_body

PREFIXES = ("ke", "co", "de", "ph", "jo", "intl")
# Run by the interpreter in the checkout under test (its `app`, nothing of this checkout's):
# transactions that each append one audit record ("audit") or insert one plain row ("bare")
# and commit, for the given seconds; prints the count, the latencies and the time taken.
APPEND_WORKER = """
import asyncio, json, sys, time
from sqlalchemy import text
from app.audit import service as audit
from app.core.config import Settings
from app.core.db import Database

async def main(mode, clients, seconds):
    db = Database(Settings())
    begun = time.monotonic()
    deadline, latencies = begun + seconds, []

    async def one():
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with db.session() as session:
                if mode == "audit":
                    await audit.record(session, None, "bench.append", details={"n": 1})
                else:
                    await session.execute(text(
                        "INSERT INTO bench_bare (id, body) VALUES (gen_random_uuid(), '{}')"))
                await session.commit()
            latencies.append((time.perf_counter() - started) * 1000)

    try:
        await asyncio.gather(*(one() for _ in range(clients)))
    finally:
        await db.dispose()
    return {"count": len(latencies), "latencies": latencies, "seconds": time.monotonic() - begun}

print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))))
"""


def _append_load(
    app_root: Path, url: str, mode: str, processes_: int, clients: int, seconds: float
) -> Load:
    """`processes_` processes of that checkout running APPEND_WORKER at once."""
    env = service_env(url, TRACEWIRE_DATABASE_POOL_SIZE=str(clients))
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", APPEND_WORKER, mode, str(clients), str(seconds)],
            cwd=app_root,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes_)
    ]
    label = "audit.record + commit" if mode == "audit" else "one plain row + commit"
    load = Load(f"{label} ({processes_} processes)", processes_ * clients)
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        result = json.loads(out.strip().splitlines()[-1])
        load.latencies += result["latencies"]
        load.statuses["200"] += result["count"]
        load.seconds = max(load.seconds, result["seconds"])  # they run side by side
    return load


async def _empty_database(server: str, name: str) -> str:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{server}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)


def _tracewire(app_root: Path, env: dict[str, str], *args: str) -> str:
    """Run that checkout's `tracewire` command (it migrates the database first)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "app", *args],
        cwd=app_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"tracewire {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


async def _login(http: Http, prefix: str) -> str:
    status, body = await http.request(
        "POST",
        "/api/v1/auth/token",
        body=urlencode(
            {
                "grant_type": "password",
                "username": f"focal@{prefix}.{DEMO_DOMAIN}",
                "password": DEMO_PASSWORD,
            }
        ).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise RuntimeError(f"login focal@{prefix}: {status} {body[:200]!r}")
    return json.loads(body)["access_token"]


async def _post_alerts(http: Http, token: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for n in range(count):
        body = json.dumps({**seizure_body(title=f"Audited read bench {n}"), "publish": True})
        status, answer = await http.request(
            "POST", "/api/v1/alerts", body=body.encode(), headers=headers
        )
        if status != 201:
            raise RuntimeError(f"POST /api/v1/alerts: {status} {answer[:300]!r}")


async def _chain_counts(server: str, name: str) -> tuple[int, int, int, int]:
    """alert.list records, linked records, their highest seq, records not linked."""
    conn = await asyncpg.connect(f"{server}/{name}")
    try:
        lists = await conn.fetchval("SELECT count(*) FROM audit_record WHERE action = 'alert.list'")
        linked, top = await conn.fetchrow(
            "SELECT count(seq), coalesce(max(seq), 0) FROM audit_record"
        )
        total = await conn.fetchval("SELECT count(*) FROM audit_record")
        return lists, linked, top, total - linked
    finally:
        await conn.close()


async def run(
    server: str,
    name: str,
    app_root: Path,
    clients: int,
    seconds: float,
    alerts: int,
    apis: int,
    append_processes: int,
) -> str:
    url = await _empty_database(server, name)
    loads: list[Load] = []
    with tempfile.TemporaryDirectory() as data_dir, processes() as procs:
        env = service_env(url, TRACEWIRE_DATA_DIR=data_dir)
        _tracewire(app_root, env, "demo")
        api_procs = [start_api(procs, env, f"api {i + 1}", cwd=app_root) for i in range(apis)]
        bare = start_baseline(procs, server, name)
        for proc in (*api_procs, bare):
            await wait_ready(proc, "/ok" if proc is bare else "/readyz")
        setup = Http(api_procs[0].base_url, 4)
        try:
            tokens = [await _login(setup, p) for p in PREFIXES]
            await _post_alerts(setup, tokens[0], alerts)
        finally:
            await setup.close()
        lists_before, *_ = await _chain_counts(server, name)
        bases = [p.base_url for p in api_procs]

        def get(path: str, params: dict[str, str] | None = None) -> Request:
            async def request(http: Http, n: int) -> int:
                headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
                status, _ = await http.request("GET", path, params=params, headers=headers)
                return status

            return request

        async def bare_ok(http: Http, _n: int) -> int:
            return (await http.request("GET", "/ok"))[0]

        async def bare_insert(http: Http, n: int) -> int:
            body = json.dumps({"action": "alert.list", "n": n}).encode()
            return (await http.request("POST", "/bare", body=body))[0]

        load_before = os.getloadavg()
        for label, targets, request in (
            ("GET /api/v1/alerts (audited)", bases, get("/api/v1/alerts", {"limit": "50"})),
            ("GET /api/v1/me (not audited)", bases, get("/api/v1/me")),
            ("GET /ok (bare)", [bare.base_url], bare_ok),
            ("POST /bare (one row)", [bare.base_url], bare_insert),
        ):
            load = await drive(
                label,
                targets,
                request,
                concurrency=clients,
                total=1_000_000,
                max_seconds=seconds,
                warmup=clients * 2,
            )
            loads.append(load)
            print(f"  {load.row()}", file=sys.stderr)
        rss = {p.name: p.peak_rss_mb() for p in (*api_procs, bare)}
        lists_after, linked, top, unlinked = await _chain_counts(server, name)
        appends = [
            _append_load(app_root, url, mode, append_processes, clients, seconds)
            for mode in ("audit", "bare")
        ]
        for load in appends:
            print(f"  {load.row()}", file=sys.stderr)
        load_after = os.getloadavg()
        _, linked_all, top_all, unlinked_all = await _chain_counts(server, name)
        verdict = _tracewire(app_root, env, "audit", "verify")
    pages = loads[0].ok + clients * 2  # the warm-up pages were audited too
    audited, me, ok, insert = loads
    lines = [
        f"- {machine()}; PostgreSQL {await postgres_version(server)}.",
        f"- API code: `{app_root}`; {apis} API process(es); {alerts} alerts posted, pages of 50.",
        f"- Load average (1, 5, 15 min) before: {_avg(load_before)}; after: {_avg(load_after)}.",
        "",
        LOAD_HEADER,
        *(load.row() for load in loads),
        "",
        f"- Audited pages ÷ unaudited `GET /me`: {_ratio(audited, me)}; "
        f"÷ bare `POST /bare`: {_ratio(audited, insert)}; ÷ `GET /ok`: {_ratio(audited, ok)}.",
        f"- Pages answered 200 (with warm-up): {pages:,}; new `alert.list` records: "
        f"{lists_after - lists_before:,}; linked records {linked:,}, highest seq {top:,} "
        f"(gap-free: {'yes' if linked == top else 'no'}), not linked: {unlinked}.",
        "",
        "The append alone (no HTTP), processes of the same checkout on the same database:",
        "",
        LOAD_HEADER.replace("| endpoint | clients |", "| transaction | at once |"),
        *(load.row() for load in appends),
        "",
        f"- Audit appends ÷ plain one-row transactions: {_ratio(appends[0], appends[1])}.",
        f"- Afterwards: linked records {linked_all:,}, highest seq {top_all:,} "
        f"(gap-free: {'yes' if linked_all == top_all else 'no'}), not linked: {unlinked_all}.",
        f"- `tracewire audit verify`: {verdict.strip()}",
        "- Peak RSS: " + ", ".join(f"{n} {mb:.0f} MiB" for n, mb in rss.items()) + ".",
    ]
    return "\n".join(lines)


def _avg(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _ratio(a: Load, b: Load) -> str:
    return f"{a.throughput / b.throughput:.2f}" if b.throughput else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_PG, help="PostgreSQL, without a database")
    parser.add_argument("--database", default="tracewire_bench_audit", help="re-created")
    parser.add_argument("--app-root", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--apis", type=int, default=1)
    parser.add_argument("--append-processes", type=int, default=2)
    args = parser.parse_args()
    print(
        asyncio.run(
            run(
                args.server,
                args.database,
                args.app_root.resolve(),
                args.clients,
                args.seconds,
                args.alerts,
                args.apis,
                args.append_processes,
            )
        )
    )


if __name__ == "__main__":
    main()
