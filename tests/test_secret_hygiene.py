"""No secret ever reaches an output: the logs of the whole run (the last test), and what
the command prints when it refuses to start on a bad setting (each secret setting, each
command, run as a real process)."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select

from app.audit.models import AuditRecord
from app.auth.models import PersonalAccessToken
from app.authz.principal import Role
from app.core.logging import JsonFormatter
from tests.conftest import CAPTURED_LOGS
from tests.factories import (
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
)
from tests.interop.helpers import ACCEPT
from tests.processes import child_env, free_port
from tests.secrets_seen import SEEN, parts_shown, remember

TRACEWIRE = [sys.executable, "-m", "app"]


def _random_seed() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# Each case: the settings it sets, the secret among them, and the variable to blame.
# `secret` is random, so any 6 characters of it in the output were copied from it.
Case = tuple[dict[str, str], str, str]


def _short_audit_key() -> Case:
    secret = base64.b64encode(os.urandom(20)).decode()
    return {"AUDIT_SIGNING_KEY": secret}, secret, "TRACEWIRE_AUDIT_SIGNING_KEY"


def _audit_key_not_base64() -> Case:
    secret = secrets.token_urlsafe(32) + "%%"
    return {"AUDIT_SIGNING_KEY": secret}, secret, "TRACEWIRE_AUDIT_SIGNING_KEY"


def _short_jwt_secret() -> Case:
    secret = secrets.token_urlsafe(18)
    return {"JWT_SECRET": secret}, secret, "TRACEWIRE_JWT_SECRET"


def _placeholder_jwt_secret() -> Case:
    secret = secrets.token_urlsafe(32)
    return {"JWT_SECRET": f"change-me-{secret}"}, secret, "TRACEWIRE_JWT_SECRET"


def _short_key_in_ring() -> Case:
    secret = secrets.token_urlsafe(18)
    keys = json.dumps([{"kid": "k1", "alg": "HS256", "secret": secret}])
    return {"JWT_KEYS": keys}, secret, "TRACEWIRE_JWT_KEYS"


def _broken_ring_json() -> Case:
    secret = secrets.token_urlsafe(32)
    return {"JWT_KEYS": f'[{{"kid": "k1", "secret": "{secret}"'}, secret, "TRACEWIRE_JWT_KEYS"


def _unknown_active_kid() -> Case:
    # A rule across settings: on its own, pydantic would print every input with it.
    secret = secrets.token_urlsafe(32)
    keys = json.dumps([{"kid": "k1", "alg": "HS256", "secret": secret}])
    return {"JWT_KEYS": keys, "JWT_ACTIVE_KID": "k9"}, secret, "TRACEWIRE_JWT_ACTIVE_KID"


def _prod_rule_with_a_real_audit_key() -> Case:
    secret = _random_seed()
    settings = {
        "ENVIRONMENT": "prod",
        "AUDIT_SIGNING_KEY": secret,
        "JWT_SECRET": "change-me-change-me-change-me-change-me",
    }
    return settings, secret, "TRACEWIRE_JWT_SECRET"


def _placeholder_database_password() -> Case:
    secret = secrets.token_urlsafe(24)
    url = f"postgresql+asyncpg://tracewire:change-me-{secret}@127.0.0.1:5432/tracewire"
    return {"DATABASE_URL": url}, secret, "TRACEWIRE_DATABASE_URL"


def _unparsable_database_url() -> Case:
    secret = secrets.token_urlsafe(24)
    url = f"postgresql+asyncpg://tracewire:{secret}@127.0.0.1:port/tracewire"
    return {"DATABASE_URL": url}, secret, "TRACEWIRE_DATABASE_URL"


def _unreachable_database() -> Case:
    secret = secrets.token_urlsafe(24)
    url = f"postgresql+asyncpg://tracewire:{secret}@127.0.0.1:{free_port()}/tracewire"
    return {"DATABASE_URL": url}, secret, "TRACEWIRE_DATABASE_URL"


BAD_SETTINGS: dict[str, Callable[[], Case]] = {
    "short audit key": _short_audit_key,
    "audit key not base64": _audit_key_not_base64,
    "short JWT secret": _short_jwt_secret,
    "placeholder JWT secret": _placeholder_jwt_secret,
    "short secret in the key ring": _short_key_in_ring,
    "key ring not JSON": _broken_ring_json,
    "unknown active key id": _unknown_active_kid,
    "prod rule beside a real audit key": _prod_rule_with_a_real_audit_key,
    "placeholder database password": _placeholder_database_password,
    "unparsable database URL": _unparsable_database_url,
    "unreachable database": _unreachable_database,
}
COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "worker": ["worker"],
    "migrate": ["migrate"],
    "demo": ["demo"],
    "create-admin": ["create-admin", "root@tracewire.example"],
    "audit verify": ["audit", "verify"],
    "agencies list": ["agencies", "list"],
    "users list": ["users", "list", "--agency", "KE"],
    "export-stix": ["export-stix", "--agency", "KE"],
    "openapi": ["openapi", "--output", "openapi.json"],
}


def _start(tmp_path: Path, args: list[str], settings: dict[str, str]) -> tuple[int, str]:
    env = child_env(
        f"sqlite+aiosqlite:///{tmp_path}/t.db",
        **({"ADMIN_PASSWORD": "a very long admin password"} | settings),
    )
    env["COLUMNS"] = "80"
    done = subprocess.run(
        TRACEWIRE + args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def _check_refusal(code: int, output: str, secret: str, variable: str) -> None:
    assert parts_shown(secret, output) == [], output
    lines = output.strip().splitlines()
    assert code == 2, output
    assert len(lines) == 1, output  # one line, not a traceback
    assert lines[0].startswith("tracewire: configuration error: "), output
    assert variable in lines[0], output


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=str)
def test_serve_refuses_each_bad_secret_setting_in_one_line_without_it(tmp_path, case):
    settings, secret, variable = BAD_SETTINGS[case]()
    remember(secret)
    code, output = _start(tmp_path, COMMANDS["serve"], settings)
    _check_refusal(code, output, secret, variable)


@pytest.mark.parametrize(
    ("command", "case"),
    [
        (command, case)
        for command in COMMANDS
        for case in ("short audit key", "unreachable database")
        if (command, case) != ("openapi", "unreachable database")  # it opens no database
    ],
)
def test_every_command_refuses_bad_settings_in_one_line_without_them(tmp_path, command, case):
    settings, secret, variable = BAD_SETTINGS[case]()
    remember(secret)
    code, output = _start(tmp_path, COMMANDS[command], settings)
    _check_refusal(code, output, secret, variable)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_reset_links_and_overlapping_secrets_stay_out_of_the_logs(client, db, app):
    """Every step of a password reset, an own password change and a rotation with an
    overlap, failures included, logged at DEBUG: none of their secrets in any line."""
    hashing = app.state.auth.hashing
    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    user = await make_user(db, hashing, agency, Role.focal_point)
    api_client, old_secret = await make_client(db, agency)
    shown: list[str] = [old_secret]
    handler = _Lines()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        admin_headers = bearer((await password_login(client, admin.email))["access_token"])
        url = f"/api/v1/users/{user.id}/password-reset"
        link = (await client.post(url, headers=admin_headers)).json()["token"]
        chosen, changed = "the user's own passphrase", "the user's next passphrase"
        shown += [link, chosen, changed]
        for password in ("short", chosen, chosen):  # refused, used, used again
            body = {"token": link, "password": password}
            await client.post("/api/v1/auth/set-password", json=body)
        user_token = (await password_login(client, user.email, chosen))["access_token"]
        shown.append(user_token)
        for current in ("not the current one", chosen):
            body = {"current_password": current, "new_password": changed}
            await client.post("/api/v1/me/password", json=body, headers=bearer(user_token))
        rotate = f"/api/v1/clients/{api_client.id}/rotate-secret"
        body = {"overlap_seconds": 3600}
        new_secret = (await client.post(rotate, json=body, headers=admin_headers)).json()
        shown.append(new_secret["client_secret"])
        shown.append((await client_login(client, api_client.id, old_secret))["access_token"])
        await client.get("/taxii2/", headers=ACCEPT, auth=(str(api_client.id), old_secret))
        await client.post(rotate, headers=admin_headers)  # the overlapping secret ends
        for secret in (old_secret, new_secret["client_secret"]):
            await client.post(
                "/api/v1/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(str(api_client.id), secret),
            )
            await client.get("/taxii2/", headers=ACCEPT, auth=(str(api_client.id), secret))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    remember(*shown)
    text = "\n".join(handler.lines)
    assert "/password-reset" in text and "/rotate-secret" in text  # the steps were logged
    assert [s[:6] + "…" for s in shown if s in text] == []
    assert all(parts_shown(s, text, size=12) == [] for s in shown)


async def test_a_personal_access_token_reaches_no_log_audit_record_or_row(client, db, app):
    """Created, used, refused for its scope, mistyped, revoked and refused: no piece of the
    token's random part in any log line of those requests, any audit record or its row."""
    first_line = len(CAPTURED_LOGS)
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.agency_admin)
    login = bearer((await password_login(client, user.email))["access_token"])
    body = {"name": "hygiene", "scopes": ["alerts:read"], "expires_in_days": 1}
    created = await client.post("/api/v1/me/tokens", json=body, headers=login)
    assert created.status_code == 201
    token = created.json()["token"]
    typo = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    remember(token, typo)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    assert (await client.get("/api/v1/subscriptions", headers=bearer(token))).status_code == 403
    assert (
        await client.post("/api/v1/me/tokens", json=body, headers=bearer(token))
    ).status_code == 403
    assert (await client.get("/api/v1/me", headers=bearer(typo))).status_code == 401
    revoked = await client.delete(f"/api/v1/me/tokens/{created.json()['id']}", headers=login)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401

    logs = "\n".join(CAPTURED_LOGS[first_line:])
    assert "/api/v1/me/tokens" in logs, "the requests were not logged: the check proves nothing"
    for secret in (token, typo):
        assert parts_shown(secret.removeprefix("twp_"), logs) == []
    async with db.session() as session:
        records = (await session.exec(select(AuditRecord))).all()
        rows = (await session.exec(select(PersonalAccessToken))).all()
    assert {"personal_token.create", "personal_token.revoke"} <= {r.action for r in records}
    stored = "\n".join(str(r.model_dump()) for r in [*records, *rows])
    assert parts_shown(token.removeprefix("twp_"), stored) == []


def test_no_secret_in_the_logs_of_the_whole_run():
    assert SEEN, "the tests registered no secrets: the check would prove nothing"
    assert CAPTURED_LOGS, "no log line was captured: the check would prove nothing"
    text = "\n".join(CAPTURED_LOGS)
    leaked = sorted(s[:6] + "…" for s in SEEN if s in text)
    assert leaked == [], f"secrets found in logs: {leaked}"
