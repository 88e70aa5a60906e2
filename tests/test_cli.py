"""The `tracewire` command, run as a newcomer would: real processes, real HTTP."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.agencies.models import AgencyStatus
from app.authz.principal import Role
from app.cli.ops import is_loopback
from app.seed.demo import DEMO_PASSWORD
from tests.factories import make_agency, make_user
from tests.processes import CHEAP_HASHING, child_env, free_port

TRACEWIRE = [sys.executable, "-m", "app"]


def _env(db_url: str, **extra: str) -> dict[str, str]:
    """A child's environment with cheap hashing; `extra` are whole names (COLUMNS too)."""
    return child_env(db_url, **CHEAP_HASHING) | extra


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        TRACEWIRE + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands(tmp_path):
    result = _run(["--help"], _env(f"sqlite+aiosqlite:///{tmp_path}/x.db"), tmp_path)
    assert result.returncode == 0
    commands = ("serve", "worker", "migrate", "create-admin", "demo", "openapi", "export-stix")
    for command in (*commands, "agencies", "users", "audit", "backup", "restore"):
        assert re.search(rf"\b{command}\b", result.stdout), command


def test_demo_is_safe_to_run_twice(tmp_path):
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    first = _run(["demo"], env, tmp_path)
    second = _run(["demo"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    for out in (first.stdout, second.stdout):
        assert "focal@ke.tracewire.example" in out
        assert "/docs" in out
        assert "Web console: http://127.0.0.1:8000/console/" in out
        assert DEMO_PASSWORD in out
    assert first.stdout.count("@") == second.stdout.count("@") >= 19


def test_create_admin_refuses_short_password(tmp_path):
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/a.db", TRACEWIRE_ADMIN_PASSWORD="short")
    result = _run(["create-admin", "root@tracewire.example"], env, tmp_path)
    assert result.returncode == 2
    assert "at least" in result.stdout


def test_production_refuses_placeholder_secret(tmp_path):
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/p.db", TRACEWIRE_ENVIRONMENT="prod")
    env["TRACEWIRE_JWT_SECRET"] = "change-me-change-me-change-me-change-me"
    result = _run(["migrate"], env, tmp_path)
    assert result.returncode != 0
    assert "placeholder secret refused" in result.stderr


def test_serve_end_to_end(db_url, tmp_path):
    """`create-admin`, then `serve`; a real HTTP client logs in and calls the API."""
    port = free_port()
    env = _env(db_url, TRACEWIRE_ADMIN_PASSWORD="a very long admin password")
    created = _run(["create-admin", "root@tracewire.example"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    server = subprocess.Popen(
        [*TRACEWIRE, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("server did not become ready")
            time.sleep(0.2)
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": "root@tracewire.example",
                "password": "a very long admin password",
            },
        )
        assert token.status_code == 200, token.text
        me = httpx.get(
            f"{base}/api/v1/me",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert me.status_code == 200
        assert me.json()["role"] == "platform_admin"
        assert me.headers["x-request-id"]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises the signal it caught.
    assert server.returncode in (0, -15), output
    assert "Application shutdown complete." in output
    assert '"logger": "tracewire.access"' in output
    assert "a very long admin password" not in output


def test_audit_verify_command_names_the_first_broken_record(tmp_path):
    import sqlite3

    env = _env(f"sqlite+aiosqlite:///{tmp_path}/audit.db")
    assert _run(["demo"], env, tmp_path).returncode == 0
    intact = _run(["audit", "verify"], env, tmp_path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "audit chain intact" in intact.stdout
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute("DROP TRIGGER audit_record_no_update")
        conn.execute("UPDATE audit_record SET outcome = 'failure' WHERE seq = 4")
    broken = _run(["audit", "verify"], env, tmp_path)
    assert broken.returncode == 1
    assert "broken at record 4" in broken.stdout


def test_serve_demo_prints_the_console_url_it_listens_on(tmp_path):
    port = free_port()
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/serve-demo.db", COLUMNS="200")
    server = subprocess.Popen(
        [*TRACEWIRE, "serve", "--demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        printed = ""
        while not printed and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            if line.startswith("Web console:"):
                printed = line
        assert f"http://127.0.0.1:{port}/console/" in printed
        while time.monotonic() < deadline:  # the URL is printed before uvicorn listens
            try:
                login = httpx.get(f"http://127.0.0.1:{port}/console/login", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            assert login.status_code == 200
            return
        pytest.fail("the console did not answer")
    finally:
        server.terminate()
        server.communicate(timeout=30)


async def _as_insider(db_url: str, *statements: tuple[str, dict[str, object]]) -> None:
    """SQL run by someone who owns the database: the append-only triggers turned off first."""
    from sqlalchemy import text

    from app.core.db import create_engine
    from tests.conftest import settings_for

    engine = create_engine(settings_for(db_url))
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                for name in ("record_no_update", "record_no_delete", "head_no_delete"):
                    await conn.execute(text(f"DROP TRIGGER IF EXISTS audit_{name}"))
            else:
                await conn.execute(text("ALTER TABLE audit_record DISABLE TRIGGER USER"))
                await conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
            for statement, params in statements:
                await conn.execute(text(statement), params)
            if engine.dialect.name != "sqlite":  # the test database is shared: restore them
                await conn.execute(text("ALTER TABLE audit_record ENABLE TRIGGER USER"))
                await conn.execute(text("ALTER TABLE audit_head ENABLE TRIGGER USER"))
    finally:
        await engine.dispose()


def test_a_witnessed_head_catches_a_cut_tail(db_url, tmp_path):
    """`audit head` gives a head to keep elsewhere; `audit verify --against` proves the chain
    still extends it, and names the cut once the last records are deleted."""
    import asyncio

    env = _env(db_url)
    assert _run(["demo"], env, tmp_path).returncode == 0
    head = _run(["audit", "head", "--out", "witness.json"], env, tmp_path)
    assert head.returncode == 0, head.stdout + head.stderr
    witness = json.loads((tmp_path / "witness.json").read_text())
    assert json.loads(head.stdout) == witness
    assert set(witness) == {"format", "seq", "hash", "signed_at", "key_id", "signature"}
    assert (tmp_path / "data" / "audit-signing-key").stat().st_mode & 0o777 == 0o600
    intact = _run(["audit", "verify", "--against", "witness.json"], env, tmp_path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"extends the witnessed head at {witness['seq']}" in intact.stdout
    cut = witness["seq"] - 3
    asyncio.run(
        _as_insider(
            db_url,
            ("DELETE FROM audit_record WHERE seq >= :cut", {"cut": cut}),
            ("DELETE FROM audit_head", {}),
        )
    )
    assert _run(["audit", "verify"], env, tmp_path).returncode == 0  # nothing left to see...
    broken = _run(["audit", "verify", "--against", "witness.json"], env, tmp_path)
    assert broken.returncode == 1  # ...but the witness remembers
    assert f"audit chain broken at record {cut}: the chain was cut" in broken.stdout
    assert f"below the witnessed head at record {witness['seq']}" in broken.stdout
    # A head signed by another key is not taken as a witness.
    forged = _run(
        ["audit", "head", "--out", "other.json"],
        {**env, "TRACEWIRE_AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode()},
        tmp_path,
    )
    assert forged.returncode == 0, forged.stdout + forged.stderr
    refused = _run(["audit", "verify", "--against", "other.json"], env, tmp_path)
    assert refused.returncode == 1
    assert "the witnessed head is not signed by the configured key" in refused.stdout


PUBLISHED_DEV_SECRET = "dev-only-insecure-jwt-secret-change-me-0000"


def test_without_a_secret_one_is_generated_and_the_published_one_signs_nothing(db_url, tmp_path):
    """The default environment with no JWT secret: a random one is generated into the data
    directory (mode 0600) and kept across restarts; a token forged with the secret that used
    to be the default is refused."""
    from jose import jwt

    env = _env(db_url, TRACEWIRE_ADMIN_PASSWORD="a very long admin password")
    del env["TRACEWIRE_ENVIRONMENT"], env["TRACEWIRE_JWT_SECRET"]  # a careless deployment
    assert _run(["create-admin", "root@tracewire.example"], env, tmp_path).returncode == 0
    secret_file = tmp_path / "data" / "jwt-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.parent.stat().st_mode & 0o777 == 0o700
    secret = secret_file.read_text().strip()
    assert len(secret) >= 48 and secret != PUBLISHED_DEV_SECRET

    with _serving(env, tmp_path) as base:
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": "root@tracewire.example",
                "password": "a very long admin password",
            },
        ).json()["access_token"]
        assert httpx.get(f"{base}/api/v1/me", headers=_bearer(token)).status_code == 200
        claims = jwt.get_unverified_claims(token)
        forged = jwt.encode(
            claims, PUBLISHED_DEV_SECRET, algorithm="HS256", headers={"kid": "default"}
        )
        assert httpx.get(f"{base}/api/v1/me", headers=_bearer(forged)).status_code == 401
    assert (tmp_path / "data" / "audit-signing-key").stat().st_mode & 0o777 == 0o600
    with _serving(env, tmp_path) as base:  # restarted: the same secret, the token still good
        assert httpx.get(f"{base}/api/v1/me", headers=_bearer(token)).status_code == 200
    assert secret_file.read_text().strip() == secret


@pytest.mark.parametrize("environment", ["dev", "test"])
def test_a_published_placeholder_secret_is_refused_in_every_environment(tmp_path, environment):
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/p.db", TRACEWIRE_ENVIRONMENT=environment)
    env["TRACEWIRE_JWT_SECRET"] = PUBLISHED_DEV_SECRET
    result = _run(["migrate"], env, tmp_path)
    assert result.returncode != 0
    assert "placeholder secret refused" in result.stderr


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def _serving(env: dict[str, str], cwd: Path) -> Iterator[str]:
    """`tracewire serve` on a free port; its base URL once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [*TRACEWIRE, "serve", "--port", str(port)],
        env={**env, "TRACEWIRE_LOG_LEVEL": "WARNING"},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("server did not become ready")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- daily operations -----------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


async def test_agencies_list_shows_id_country_type_status_and_name(db_url, db, tmp_path):
    ke = await make_agency(db, country="KE", name="Kenya Focal Point (cli)")
    de = await make_agency(
        db, country="DE", name="German Customs (cli)", status=AgencyStatus.suspended
    )
    env = _env(db_url, COLUMNS="200")
    listed = _run(["agencies", "list"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, *rows = _lines(listed.stdout)
    assert header.split() == ["id", "country", "type", "status", "name"]
    assert rows == [
        f"{de.id}  DE       police  suspended  German Customs (cli)",
        f"{ke.id}  KE       police  active     Kenya Focal Point (cli)",
    ]
    as_json = _run(["agencies", "list", "--json"], env, tmp_path)
    assert [json.loads(line)["id"] for line in _lines(as_json.stdout)] == [str(de.id), str(ke.id)]


async def test_users_list_takes_the_agency_by_id_name_or_country(db_url, db, app, tmp_path):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE", name="Kenya Focal Point (cli)")
    other = await make_agency(db, country="DE", name="German Customs (cli)")
    admin = await make_user(db, hashing, ke, Role.agency_admin, email="admin@ke.example.org")
    focal = await make_user(db, hashing, ke, Role.focal_point, email="focal@ke.example.org")
    stranger = await make_user(db, hashing, other, Role.reader, email="reader@de.example.org")
    env = _env(db_url, COLUMNS="200")
    outputs = []
    for reference in (str(ke.id), "kenya focal point (CLI)", "ke"):
        listed = _run(["users", "list", "--agency", reference], env, tmp_path)
        assert listed.returncode == 0, listed.stderr
        outputs.append(listed.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    header, *rows = _lines(outputs[0])
    assert header.split()[:4] == ["id", "email", "role", "active"]
    assert [row.split()[:4] for row in rows] == [
        [str(admin.id), admin.email, "agency_admin", "True"],
        [str(focal.id), focal.email, "focal_point", "True"],
    ]
    assert stranger.email not in outputs[0]
    as_json = _run(["users", "list", "--agency", "DE", "--json"], env, tmp_path)
    assert [json.loads(line)["email"] for line in _lines(as_json.stdout)] == [stranger.email]


async def test_an_agency_reference_that_fits_none_or_several_is_refused(db_url, db, tmp_path):
    await make_agency(db, country="XX", name="Operators (cli)")
    await make_agency(db, country="XX", name="Global Programme (cli)")
    env = _env(db_url, COLUMNS="200")
    several = _run(["users", "list", "--agency", "XX"], env, tmp_path)
    assert several.returncode == 1
    assert "2 agencies in XX" in several.stderr
    assert "Global Programme (cli), Operators (cli)" in several.stderr
    for reference in ("Nobody (cli)", "FR", "00000000-0000-4000-8000-000000000000"):
        missing = _run(["export-stix", "--agency", reference], env, tmp_path)
        assert missing.returncode == 1
        assert "No agency" in missing.stderr, reference
        assert "Traceback" not in missing.stderr


async def test_export_stix_takes_the_agency_by_name_or_country(db_url, db, tmp_path):
    await make_agency(db, country="KE", name="Kenya Focal Point (cli)")
    de = await make_agency(db, country="DE", name="German Customs (cli)")
    env = _env(db_url)
    bundles = {}
    for reference in (str(de.id), "German Customs (cli)", "de"):
        out = tmp_path / f"{len(bundles)}.json"
        exported = _run(["export-stix", "--agency", reference, "--out", str(out)], env, tmp_path)
        assert exported.returncode == 0, exported.stderr
        bundles[reference] = json.loads(out.read_text())
    identities = [
        {o["name"] for o in bundle["objects"] if o["type"] == "identity"}
        for bundle in bundles.values()
    ]
    assert identities[0] == identities[1] == identities[2]


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("localhost") and is_loopback("127.8.9.10")
    assert not is_loopback("0.0.0.0") and not is_loopback("::")  # noqa: S104
    assert not is_loopback("192.0.2.1") and not is_loopback("tracewire.example")


def test_serve_in_dev_warns_when_it_listens_beyond_loopback(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is on no interface: the bind fails, nothing ever listens.
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/dev.db", TRACEWIRE_ENVIRONMENT="dev")
    env.pop("TRACEWIRE_JWT_SECRET")
    served = _run(["serve", "--host", "192.0.2.1", "--port", str(free_port())], env, tmp_path)
    assert served.returncode != 0
    warnings = [
        json.loads(line)
        for line in served.stderr.splitlines()
        if line.startswith("{") and '"warning"' in line
    ]
    assert any(
        w["logger"] == "tracewire.cli"
        and "listening on 192.0.2.1 in the dev environment" in w["message"]
        for w in warnings
    ), served.stderr


# --- backups --------------------------------------------------------------------------


def _audit_count(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM audit_record").fetchone()[0]


def test_sqlite_backup_and_restore_round_trip_keeps_the_audit_chain_intact(tmp_path):
    database = tmp_path / "live.db"
    env = _env(f"sqlite+aiosqlite:///{database}")
    assert _run(["demo"], env, tmp_path).returncode == 0
    saved = _audit_count(database)

    made = _run(["backup", "saved.db"], env, tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"{saved} audit records" in made.stdout
    assert sorted(p.name for p in tmp_path.glob("saved.db*")) == ["saved.db"]  # one file
    again = _run(["backup", "saved.db"], env, tmp_path)
    assert again.returncode == 2
    assert "exists" in again.stderr

    # Life goes on after the backup (an export is audited), then the backup comes back.
    assert (
        _run(["export-stix", "--agency", "KE", "--out", "ke.json"], env, tmp_path).returncode == 0
    )
    assert _audit_count(database) > saved
    restored = _run(["restore", "saved.db", "--yes"], env, tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert _audit_count(database) == saved
    verified = _run(["audit", "verify"], env, tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"audit chain intact: {saved} records" in verified.stdout
    # The restored database serves as before: the demo accounts are there.
    listed = _run(["users", "list", "--agency", "KE"], env, tmp_path)
    assert "focal@ke.tracewire.example" in listed.stdout


def test_backup_is_consistent_while_a_writer_holds_the_database(tmp_path):
    import sqlite3

    database = tmp_path / "busy.db"
    env = _env(f"sqlite+aiosqlite:///{database}")
    assert _run(["demo"], env, tmp_path).returncode == 0
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE agency SET name = name || ' (uncommitted)'")
        made = _run(["backup", "busy-copy.db"], env, tmp_path)
        assert made.returncode == 0, made.stderr
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    with sqlite3.connect(tmp_path / "busy-copy.db") as copy:
        names = [r[0] for r in copy.execute("SELECT name FROM agency")]
    assert names and not any("uncommitted" in n for n in names)
    verified = _run(
        ["audit", "verify"], _env(f"sqlite+aiosqlite:///{tmp_path}/busy-copy.db"), tmp_path
    )
    assert verified.returncode == 0, verified.stdout


def test_restore_refuses_what_is_not_a_tracewire_backup(tmp_path):
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/target.db")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    refused = _run(["restore", "junk.db", "--yes"], env, tmp_path)
    assert refused.returncode == 2
    assert "not an SQLite database" in refused.stderr
    assert not (tmp_path / "target.db").exists()


def test_backup_on_postgresql_points_at_pg_dump(postgres_database, tmp_path):
    backed = _run(["backup", "x.db"], _env(postgres_database), tmp_path)
    assert backed.returncode == 2
    assert "pg_dump" in backed.stderr
    assert not (tmp_path / "x.db").exists()


def test_postgresql_dump_and_restore_as_the_readme_says_keeps_the_audit_chain(
    postgres_database, tmp_path
):
    import shutil

    from sqlalchemy.engine import make_url

    tools = {name: shutil.which(name) for name in ("pg_dump", "pg_restore", "psql")}
    if not all(tools.values()):
        pytest.skip(f"not installed: {[n for n, path in tools.items() if not path]}")
    pg_dump, pg_restore, psql = (str(tools[n]) for n in ("pg_dump", "pg_restore", "psql"))
    source = make_url(postgres_database)
    libpq = source.set(drivername="postgresql")
    env = _env(postgres_database)
    assert _run(["demo"], env, tmp_path).returncode == 0
    dump = tmp_path / "tracewire.dump"
    plain = libpq.render_as_string(hide_password=False)
    subprocess.run([pg_dump, "--format=custom", f"--file={dump}", plain], check=True)
    name = f"{source.database}_restored"
    admin = libpq.set(database="postgres").render_as_string(hide_password=False)
    subprocess.run([psql, "-q", admin, "-c", f'CREATE DATABASE "{name}"'], check=True)
    try:
        target = libpq.set(database=name).render_as_string(hide_password=False)
        subprocess.run([pg_restore, "--no-owner", f"--dbname={target}", str(dump)], check=True)
        restored_url = source.set(database=name).render_as_string(hide_password=False)
        verified = _run(["audit", "verify"], _env(restored_url), tmp_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "audit chain intact" in verified.stdout
        original = _run(["audit", "verify"], env, tmp_path)
        assert original.stdout == verified.stdout  # the same records, the same head
    finally:
        subprocess.run([psql, "-q", admin, "-c", f'DROP DATABASE "{name}" WITH (FORCE)'])
