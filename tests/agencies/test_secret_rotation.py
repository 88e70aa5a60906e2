"""Rotating an API client's secret, at once or with an overlap during which the previous
secret (grant and HTTP Basic) and the tokens issued before the rotation keep working."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from app.agencies.models import ApiClient
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.db import Database
from app.core.types import utcnow
from tests.factories import (
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
)
from tests.interop.helpers import ACCEPT
from tests.secrets_seen import remember

TOKEN = "/api/v1/auth/token"
HOUR = 3600


@dataclass
class Setup:
    client_id: uuid.UUID
    secret: str
    admin: dict[str, str]
    others: dict[str, dict[str, str]]


@pytest.fixture
async def setup(client: httpx.AsyncClient, db: Database, app: object) -> Setup:
    hashing = app.state.auth.hashing  # type: ignore[attr-defined]
    a, b = await make_agency(db), await make_agency(db, country="DE")
    operator = await make_agency(db, country="XX")
    api_client, secret = await make_client(db, a, "alerts:read")
    headers = {}
    for name, agency, role in (
        ("a_admin", a, Role.agency_admin),
        ("a_focal", a, Role.focal_point),
        ("b_admin", b, Role.agency_admin),
        ("platform_admin", operator, Role.platform_admin),
    ):
        user = await make_user(db, hashing, agency, role)
        headers[name] = bearer((await password_login(client, user.email))["access_token"])
    return Setup(api_client.id, secret, headers.pop("a_admin"), headers)


async def _rotate(client: httpx.AsyncClient, setup: Setup, **kwargs: object) -> dict:
    answer = await client.post(
        f"/api/v1/clients/{setup.client_id}/rotate-secret", headers=setup.admin, **kwargs
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    remember(answer.json()["client_secret"])
    return answer.json()


async def _grant(client: httpx.AsyncClient, client_id: uuid.UUID, secret: str) -> int:
    answer = await client.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=(str(client_id), secret)
    )
    if answer.status_code == 200:
        remember(answer.json()["access_token"])
    return answer.status_code


async def _basic(client: httpx.AsyncClient, client_id: uuid.UUID, secret: str) -> int:
    return (await client.get("/taxii2/", headers=ACCEPT, auth=(str(client_id), secret))).status_code


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get("/api/v1/me", headers=headers)).status_code


async def _stored(db: Database, client_id: uuid.UUID) -> ApiClient:
    async with db.session() as session:
        found = await session.get(ApiClient, client_id)
    assert found is not None
    return found


async def _move_overlap_end(db: Database, client_id: uuid.UUID, to: datetime) -> None:
    """Time passes for the grant and the bearer check (they read the real clock): the
    stored end of the overlap is moved instead of the clock."""
    async with db.session() as session:
        row = await session.get(ApiClient, client_id)
        assert row is not None
        row.previous_secret_expires_at = to
        session.add(row)
        await session.commit()


@pytest.mark.parametrize("kwargs", [{}, {"json": {}}, {"json": {"overlap_seconds": 0}}])
async def test_without_an_overlap_the_old_secret_and_its_tokens_stop_at_once(
    client, db, setup, kwargs
):
    old = bearer((await client_login(client, setup.client_id, setup.secret))["access_token"])
    body = await _rotate(client, setup, **kwargs)
    assert body["previous_secret_expires_at"] is None
    assert await _grant(client, setup.client_id, setup.secret) == 401
    assert await _basic(client, setup.client_id, setup.secret) == 401
    assert await _me(client, old) == 401
    assert await _grant(client, setup.client_id, body["client_secret"]) == 200
    assert await _basic(client, setup.client_id, body["client_secret"]) == 200
    stored = await _stored(db, setup.client_id)
    assert stored.previous_secret_hash is None and stored.previous_secret_expires_at is None


async def test_during_an_overlap_the_old_secret_and_its_tokens_work_then_stop(
    client, db, app, setup
):
    old = bearer((await client_login(client, setup.client_id, setup.secret))["access_token"])
    before = utcnow()
    body = await _rotate(client, setup, json={"overlap_seconds": HOUR})
    ends = datetime.fromisoformat(body["previous_secret_expires_at"])
    assert before + timedelta(seconds=HOUR) <= ends <= utcnow() + timedelta(seconds=HOUR)
    new = bearer(
        (await client_login(client, setup.client_id, body["client_secret"]))["access_token"]
    )
    # Inside the overlap: both secrets, by grant and by HTTP Basic, and both tokens.
    for secret in (setup.secret, body["client_secret"]):
        assert await _grant(client, setup.client_id, secret) == 200
        assert await _basic(client, setup.client_id, secret) == 200
    assert await _me(client, old) == 200 and await _me(client, new) == 200
    # A token obtained with the old secret during the overlap lives no longer than it.
    during = bearer((await client_login(client, setup.client_id, setup.secret))["access_token"])
    assert await _me(client, during) == 200
    # HTTP Basic reads the auth clock: one second past the end, the old secret is refused.
    clock = {"now": ends + timedelta(seconds=1)}
    real = app.state.auth
    app.state.auth = dataclasses.replace(real, clock=lambda: clock["now"])
    assert await _basic(client, setup.client_id, setup.secret) == 401
    assert await _basic(client, setup.client_id, body["client_secret"]) == 200
    clock["now"] = ends - timedelta(seconds=1)
    assert await _basic(client, setup.client_id, setup.secret) == 200
    app.state.auth = real
    # One second past the end for the grant and the bearer check too.
    await _move_overlap_end(db, setup.client_id, utcnow() - timedelta(seconds=1))
    assert await _grant(client, setup.client_id, setup.secret) == 401
    assert await _basic(client, setup.client_id, setup.secret) == 401
    assert await _me(client, old) == 401
    assert await _me(client, during) == 401
    assert await _me(client, new) == 200
    assert await _grant(client, setup.client_id, body["client_secret"]) == 200


async def test_a_rotation_during_an_overlap_ends_the_older_secret_at_once(client, db, setup):
    first_token = bearer(
        (await client_login(client, setup.client_id, setup.secret))["access_token"]
    )
    first = await _rotate(client, setup, json={"overlap_seconds": HOUR})
    second_token = bearer(
        (await client_login(client, setup.client_id, first["client_secret"]))["access_token"]
    )
    second = await _rotate(client, setup, json={"overlap_seconds": HOUR})
    assert await _grant(client, setup.client_id, setup.secret) == 401
    assert await _basic(client, setup.client_id, setup.secret) == 401
    assert await _me(client, first_token) == 401
    assert await _grant(client, setup.client_id, first["client_secret"]) == 200
    assert await _me(client, second_token) == 200
    assert await _grant(client, setup.client_id, second["client_secret"]) == 200
    # A rotation without an overlap ends the one still overlapping.
    third = await _rotate(client, setup)
    assert await _grant(client, setup.client_id, first["client_secret"]) == 401
    assert await _me(client, second_token) == 401
    assert await _grant(client, setup.client_id, third["client_secret"]) == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"overlap_seconds": -1}, "body.overlap_seconds"),
        ({"overlap_seconds": 604801}, "body.overlap_seconds"),
        ({"overlap_seconds": "an hour"}, "body.overlap_seconds"),
        ({"overlap_seconds": 60, "keep_old": True}, "body.keep_old"),
    ],
)
async def test_a_bad_overlap_names_the_field_and_rotates_nothing(client, db, setup, body, field):
    answer = await client.post(
        f"/api/v1/clients/{setup.client_id}/rotate-secret", json=body, headers=setup.admin
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    stored = await _stored(db, setup.client_id)
    assert stored.token_epoch == 0 and stored.previous_secret_hash is None
    assert await _grant(client, setup.client_id, setup.secret) == 200


async def test_the_longest_overlap_is_a_week(client, setup):
    body = await _rotate(client, setup, json={"overlap_seconds": 604800})
    assert body["previous_secret_expires_at"] is not None


@pytest.mark.parametrize(
    ("caller", "status"), [("b_admin", 404), ("platform_admin", 403), ("a_focal", 403)]
)
async def test_who_may_not_rotate(client, db, setup, caller, status):
    answer = await client.post(
        f"/api/v1/clients/{setup.client_id}/rotate-secret",
        json={"overlap_seconds": HOUR},
        headers=setup.others[caller],
    )
    assert answer.status_code == status
    assert "client_secret" not in answer.text
    assert (await _stored(db, setup.client_id)).token_epoch == 0


async def test_a_rotation_is_audited_without_its_secret(client, db, setup):
    body = await _rotate(client, setup, json={"overlap_seconds": 120})
    async with db.session() as session:
        query = select(AuditRecord).where(AuditRecord.action == "client.rotate_secret")
        [record] = (await session.exec(query)).all()
    assert record.object_id == str(setup.client_id)
    assert record.details == {
        "overlap_seconds": 120,
        "previous_secret_expires_at": datetime.fromisoformat(
            body["previous_secret_expires_at"]
        ).isoformat(),
    }
    assert body["client_secret"] not in str(record.details)
