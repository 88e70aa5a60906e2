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

from app.seed import DEMO_DOMAIN, DEMO_PASSWORD
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
    server: str, name: str, app_root: Path, clients: int, seconds: float, alerts: int, apis: int
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

        async def bare_ok(http: Http, n: int) -> int:
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
        load_after = os.getloadavg()
        rss = {p.name: p.peak_rss_mb() for p in (*api_procs, bare)}
        lists_after, linked, top, unlinked = await _chain_counts(server, name)
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
            )
        )
    )


if __name__ == "__main__":
    main()
