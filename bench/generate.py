"""Load a realistic population straight into PostgreSQL with COPY: agencies, groups, alerts.

    python bench/generate.py --alerts 1000000 --url postgresql://postgres@127.0.0.1:5432/tracewire_bench

Creates the database if needed, applies the migrations, empties the tables it fills,
then COPYs. Deterministic for a given --seed. Prints the ids of a small-visibility and
a large-visibility agency for bench/explain.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from app.alerts.serials import make_key, serial_key
from app.core import migrate
from app.core.db import create_engine
from tests.conftest import settings_for

WORDS = (
    "rifle pistol seizure border lorry cache ammunition drone detonator cartridge trafficking "
    "smuggling customs port container warehouse broker forwarder consignment militia arsenal "
    "shotgun carbine grenade launcher mortar explosive precursor fertiliser parcel courier"
).split()
MAKES = [
    "Kalashnikov Concern",
    "Zastava",
    "Glock",
    "Norinco",
    "FN Herstal",
    "Beretta",
    "CZ",
    "Taurus",
]
COUNTRIES = ["KE", "CO", "DE", "PH", "JO", "UG", "NG", "ML", "FR", "BR", "MX", "TR", "UA", "ZA"]


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _prepare(url: str) -> None:
    admin_url, _, name = _pg(url).rpartition("/")
    conn = await asyncpg.connect(admin_url + "/postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    engine = create_engine(settings_for(url.replace("postgresql://", "postgresql+asyncpg://")))
    await migrate.upgrade(engine)
    await engine.dispose()


async def generate(url: str, n_alerts: int, n_agencies: int, n_groups: int, seed: int) -> None:
    rnd = random.Random(seed)
    await _prepare(url)
    conn = await asyncpg.connect(_pg(url))
    # A bulk load: skip per-row foreign-key triggers (the generator keeps references sound).
    await conn.execute("SET session_replication_role = replica")
    started = time.perf_counter()
    await conn.execute(
        "TRUNCATE alert_tag, alert_item, alert_recipient_agency, alert_recipient_group, alert, "
        "sharing_group_member, sharing_group, sharing_policy, idempotency_record, refresh_token, "
        "auth_session, api_client, user_account, agency CASCADE"
    )
    now = datetime.now(UTC)
    agencies = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(n_agencies)]
    await conn.copy_records_to_table(
        "agency",
        columns=[
            "id",
            "name",
            "country",
            "type",
            "is_focal_point",
            "status",
            "created_at",
            "updated_at",
        ],
        records=[
            (
                a,
                f"Agency {i:03d}",
                COUNTRIES[i % len(COUNTRIES)],
                "police",
                True,
                "active",
                now,
                now,
            )
            for i, a in enumerate(agencies)
        ],
    )
    # Agency 0 is "small": in no group, rarely named. Agency 1 is "large": in most groups.
    groups = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(n_groups)]
    members: list[tuple[uuid.UUID, uuid.UUID, datetime]] = []
    for g in groups:
        chosen = set(rnd.sample(agencies[2:], rnd.randint(5, 30)))
        if rnd.random() < 0.8:
            chosen.add(agencies[1])
        members += [(g, a, now) for a in chosen]
    await conn.copy_records_to_table(
        "sharing_group",
        columns=[
            "id",
            "owner_agency_id",
            "name",
            "description",
            "hide_members",
            "created_at",
            "updated_at",
        ],
        records=[
            (g, agencies[2 + i % (n_agencies - 2)], f"Group {i}", "", False, now, now)
            for i, g in enumerate(groups)
        ],
    )
    await conn.copy_records_to_table(
        "sharing_group_member", columns=["group_id", "agency_id", "added_at"], records=members
    )
    # Bulk-load practice: drop the secondary indexes, COPY, then build them once.
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'public' AND tablename = ANY($1)"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        ["alert", "alert_item", "alert_tag", "alert_recipient_agency", "alert_recipient_group"],
    )
    for row in indexes:
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    batch = 50_000
    for start in range(0, n_alerts, batch):
        await _alert_batch(conn, rnd, agencies, groups, now, min(batch, n_alerts - start), start)
        print(f"  {start + batch:>9,} alerts  {time.perf_counter() - started:6.1f} s", flush=True)
    await conn.execute("SET maintenance_work_mem = '512MB'")
    for row in indexes:
        await conn.execute(row["indexdef"])
    print(f"  indexes rebuilt      {time.perf_counter() - started:6.1f} s", flush=True)
    await conn.execute("ANALYZE")
    await conn.close()
    print(f"loaded {n_alerts:,} alerts in {time.perf_counter() - started:.1f} s")
    print(f"small-visibility agency: {agencies[0]}")
    print(f"large-visibility agency: {agencies[1]}")


async def _alert_batch(conn, rnd, agencies, groups, now, count, offset) -> None:  # noqa: ANN001
    alerts, items, tags, rec_a, rec_g = [], [], [], [], []
    for i in range(count):
        alert_id = uuid.UUID(int=rnd.getrandbits(128))
        at = now - timedelta(seconds=(offset + i) * 30 + rnd.random())
        originator = agencies[2 + int(rnd.paretovariate(1.2)) % (len(agencies) - 2)]
        kind = rnd.choices(["seized_weapon", "trace_request", "suspicious_procurement"], [6, 2, 2])[
            0
        ]
        status = rnd.choices(["published", "draft", "withdrawn"], [95, 3, 2])[0]
        roll = rnd.random()
        audience, tlp = (
            ("community", rnd.choice(["clear", "green"]))
            if roll < 0.3
            else ("originator", "amber+strict")
            if roll < 0.35
            else ("recipients", rnd.choice(["amber", "amber", "amber+strict", "red"]))
        )
        addressed = rnd.choice(agencies[1:]) if kind == "trace_request" else None
        keys: list[uuid.UUID] = []
        if audience == "recipients":
            for a in rnd.sample(agencies[1:], rnd.randint(1, 4)):
                rec_a.append((alert_id, a))
                keys.append(a)
            if tlp != "red" and rnd.random() < 0.5:
                for g in rnd.sample(groups, rnd.randint(1, 2)):
                    rec_g.append((alert_id, g))
                    keys.append(g)
        embargo = now + timedelta(days=1) if rnd.random() < 0.01 else None
        words = " ".join(rnd.choices(WORDS, k=12))
        serials = []
        for position in range(rnd.randint(1, 3)):
            make = rnd.choice(MAKES)
            serial = f"{rnd.choice('ABCDEFGHKMPRTX')}{rnd.randint(0, 9_999_999):07d}"
            serials.append(serial)
            items.append(
                (
                    uuid.UUID(int=rnd.getrandbits(128)),
                    alert_id,
                    position,
                    "small_arm",
                    make,
                    make_key(make),
                    "7.62x39mm",
                    serial,
                    "present",
                    serial_key(serial, "present"),
                    "[]",
                    1.0,
                    "pieces",
                )
            )
        tag = rnd.choice(WORDS)
        tags.append((alert_id, tag))
        alerts.append(
            (
                alert_id,
                kind,
                originator,
                uuid.UUID(int=1),
                "user",
                status,
                1,
                f"{tag.title()} case {offset + i}",
                words,
                rnd.choice(COUNTRIES),
                at,
                json.dumps([tag]),
                "{}",
                tlp,
                audience,
                embargo,
                "[]",
                addressed,
                keys,
                f"{words} {' '.join(serials)}",
                at,
                at,
                at if status != "draft" else None,
                at,
                now if status == "withdrawn" else None,
            )
        )
    await conn.copy_records_to_table(
        "alert",
        columns=[
            "id",
            "kind",
            "originator_agency_id",
            "created_by",
            "created_by_kind",
            "status",
            "version",
            "title",
            "summary",
            "country",
            "occurred_at",
            "tags",
            "details",
            "tlp",
            "audience",
            "embargo_until",
            "handling_codes",
            "addressed_to_agency_id",
            "reader_keys",
            "search_text",
            "created_at",
            "updated_at",
            "published_at",
            "sort_at",
            "withdrawn_at",
        ],
        records=alerts,
    )
    await conn.copy_records_to_table(
        "alert_item",
        columns=[
            "id",
            "alert_id",
            "position",
            "category",
            "make",
            "make_key",
            "calibre",
            "serial_raw",
            "serial_status",
            "serial_key",
            "markings",
            "quantity",
            "unit",
        ],
        records=items,
    )
    await conn.copy_records_to_table("alert_tag", columns=["alert_id", "tag"], records=tags)
    await conn.copy_records_to_table(
        "alert_recipient_agency", columns=["alert_id", "agency_id"], records=rec_a
    )
    await conn.copy_records_to_table(
        "alert_recipient_group", columns=["alert_id", "group_id"], records=rec_g
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/tracewire_bench")
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2370)
    args = parser.parse_args()
    asyncio.run(generate(args.url, args.alerts, args.agencies, args.groups, args.seed))


if __name__ == "__main__":
    main()
