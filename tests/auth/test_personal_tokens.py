"""Personal access tokens: made, listed and revoked by a user in person; used by scripts as
that user narrowed to the token's scopes, and refused (401) the moment anything about the
token or its user is no longer good."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select

from app.agencies.models import Agency, User
from app.audit.models import AuditRecord
from app.auth.models import PersonalAccessToken
from app.authz.principal import Role
from app.core.security import digest_secret
from app.core.types import utcnow
from tests.factories import (
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
)
from tests.secrets_seen import remember

TOKENS = "/api/v1/me/tokens"


@dataclass
class Cast:
    ke: Agency
    de: Agency
    users: dict[str, User]
    headers: dict[str, dict[str, str]]


@pytest.fixture
async def cast(client, db, app) -> Cast:
    """Kenya (admin, focal point, reader), Germany (admin, focal point), the operator."""
    hashing = app.state.auth.hashing
    operator = await make_agency(db, country="XX")
    ke = await make_agency(db, country="KE")
    de = await make_agency(db, country="DE")
    users = {
        "operator": await make_user(db, hashing, operator, Role.platform_admin),
        "ke_admin": await make_user(db, hashing, ke, Role.agency_admin),
        "ke_focal": await make_user(db, hashing, ke, Role.focal_point),
        "ke_reader": await make_user(db, hashing, ke, Role.reader),
        "de_admin": await make_user(db, hashing, de, Role.agency_admin),
        "de_focal": await make_user(db, hashing, de, Role.focal_point),
    }
    headers = {
        name: bearer((await password_login(client, user.email))["access_token"])
        for name, user in users.items()
    }
    return Cast(ke, de, users, headers)


async def make_pat(
    client, headers: dict[str, str], scopes: list[str], *, days: int = 30, name: str = "sync"
) -> dict:
    """Create a personal access token (asserting 201); its answer, token included."""
    answer = await client.post(
        TOKENS, json={"name": name, "scopes": scopes, "expires_in_days": days}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    remember(body["token"])
    return body


def use_clock(app, start=None) -> dict:
    """Make the app's auth clock a value the test moves."""
    clock = {"now": start or utcnow()}
    app.state.auth = dataclasses.replace(app.state.auth, clock=lambda: clock["now"])
    return clock


# --- creating, listing, revoking -----------------------------------------------------------


async def test_token_is_shown_once_stored_as_a_digest_and_acts_as_its_user(client, db, cast):
    created = await make_pat(client, cast.headers["ke_focal"], ["alerts:read", "alerts:write"])
    token = created["token"]
    assert token.startswith("twp_") and len(token) > 40
    assert created["token_hint"] == token[:8]
    assert created["name"] == "sync"
    assert created["scopes"] == ["alerts:read", "alerts:write"]
    assert created["last_used_at"] is None
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert lifetime == timedelta(days=30)

    listed = (await client.get(TOKENS, headers=cast.headers["ke_focal"])).json()
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    assert "token" not in listed["items"][0] and token not in str(listed)
    async with db.session() as session:
        row = await session.get(PersonalAccessToken, uuid.UUID(created["id"]))
    assert row is not None and row.token_hash == digest_secret(token)
    assert token not in str(row.model_dump())

    me = await client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(cast.users["ke_focal"].id)
    assert me.json()["kind"] == "user"
    assert me.json()["role"] is None  # a token holds no role, only its scopes
    assert me.json()["scopes"] == ["alerts:read", "alerts:write"]


async def test_answer_to_create_is_not_cached(client, cast):
    answer = await client.post(
        TOKENS,
        json={"name": "x", "scopes": ["alerts:read"], "expires_in_days": 1},
        headers=cast.headers["ke_reader"],
    )
    remember(answer.json()["token"])
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("who", "scopes"),
    [
        ("ke_reader", ["alerts:write"]),
        ("ke_reader", ["alerts:read", "webhooks:manage"]),
        ("ke_focal", ["webhooks:manage"]),
        ("ke_admin", ["alerts:read:red"]),  # no role holds it; only a client may be granted it
    ],
)
async def test_a_scope_the_user_does_not_hold_is_422_naming_scopes(client, db, cast, who, scopes):
    answer = await client.post(
        TOKENS,
        json={"name": "too much", "scopes": scopes, "expires_in_days": 7},
        headers=cast.headers[who],
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == ["body.scopes"]
    async with db.session() as session:
        assert (await session.exec(select(PersonalAccessToken))).all() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "scopes": ["alerts:read"], "expires_in_days": 7}, "body.name"),
        ({"name": "x" * 101, "scopes": ["alerts:read"], "expires_in_days": 7}, "body.name"),
        ({"name": "a\x00b", "scopes": ["alerts:read"], "expires_in_days": 7}, "body.name"),
        ({"name": "n", "scopes": [], "expires_in_days": 7}, "body.scopes"),
        ({"name": "n", "scopes": ["admin"], "expires_in_days": 7}, "body.scopes.0"),
        ({"name": "n", "scopes": "alerts:read", "expires_in_days": 7}, "body.scopes"),
        ({"name": "n", "scopes": ["alerts:read"], "expires_in_days": 0}, "body.expires_in_days"),
        ({"name": "n", "scopes": ["alerts:read"], "expires_in_days": 366}, "body.expires_in_days"),
        ({"name": "n", "scopes": ["alerts:read"], "expires_in_days": "7"}, "body.expires_in_days"),
        (
            {"name": "n", "scopes": ["alerts:read"], "expires_in_days": 2**70},
            "body.expires_in_days",
        ),
        ({"name": "n", "scopes": ["alerts:read"]}, "body.expires_in_days"),
        (
            {"name": "n", "scopes": ["alerts:read"], "expires_in_days": 7, "role": "x"},
            "body.role",
        ),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(client, cast, body, field):
    answer = await client.post(TOKENS, json=body, headers=cast.headers["ke_admin"])
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]]


async def test_one_year_is_the_longest_lifetime(client, cast):
    created = await make_pat(client, cast.headers["ke_reader"], ["alerts:read"], days=365)
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert lifetime == timedelta(days=365)


async def test_a_malformed_token_id_is_422_and_an_unknown_one_404(client, cast):
    headers = cast.headers["ke_reader"]
    assert (await client.delete(f"{TOKENS}/not-a-uuid", headers=headers)).status_code == 422
    assert (await client.delete(f"{TOKENS}/{uuid.uuid4()}", headers=headers)).status_code == 404


async def test_revoked_token_is_refused_and_gone_from_the_list(client, cast):
    headers = cast.headers["ke_focal"]
    kept = await make_pat(client, headers, ["alerts:read"], name="kept")
    gone = await make_pat(client, headers, ["alerts:read"], name="gone")
    assert (await client.get("/api/v1/me", headers=bearer(gone["token"]))).status_code == 200
    assert (await client.delete(f"{TOKENS}/{gone['id']}", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(gone["token"]))).status_code == 401
    assert (await client.get("/api/v1/me", headers=bearer(kept["token"]))).status_code == 200
    listed = (await client.get(TOKENS, headers=headers)).json()["items"]
    assert [t["name"] for t in listed] == ["kept"]
    # Revoking it again: it no longer exists for its owner either.
    assert (await client.delete(f"{TOKENS}/{gone['id']}", headers=headers)).status_code == 404


@pytest.mark.parametrize("who", ["ke_admin", "de_admin", "operator", "ke_reader"])
async def test_nobody_else_lists_or_revokes_your_token(client, cast, who):
    mine = await make_pat(client, cast.headers["ke_focal"], ["alerts:read"])
    answer = await client.delete(f"{TOKENS}/{mine['id']}", headers=cast.headers[who])
    assert answer.status_code == 404
    theirs = (await client.get(TOKENS, headers=cast.headers[who])).json()["items"]
    assert mine["id"] not in [t["id"] for t in theirs]
    assert (await client.get("/api/v1/me", headers=bearer(mine["token"]))).status_code == 200


async def test_list_pages_newest_first(client, cast):
    headers = cast.headers["ke_reader"]
    made = [
        (await make_pat(client, headers, ["alerts:read"], name=f"t{i}"))["id"] for i in range(3)
    ]
    first = (await client.get(TOKENS, params={"limit": 2}, headers=headers)).json()
    rest = (
        await client.get(
            TOKENS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
        )
    ).json()
    assert [t["id"] for t in first["items"] + rest["items"]] == made[::-1]
    assert rest["next_cursor"] is None


# --- only a user in person manages tokens --------------------------------------------------


def _management_calls(token_id: str) -> list[tuple[str, str, dict | None]]:
    body = {"name": "minted", "scopes": ["alerts:read"], "expires_in_days": 1}
    return [("POST", TOKENS, body), ("GET", TOKENS, None), ("DELETE", f"{TOKENS}/{token_id}", None)]


async def test_an_api_client_gets_403_on_every_token_endpoint(client, db, cast):
    mine = await make_pat(client, cast.headers["ke_admin"], ["alerts:read"])
    api_client, secret = await make_client(
        db, cast.ke, "alerts:read alerts:write traces:write webhooks:manage"
    )
    headers = bearer((await client_login(client, api_client.id, secret))["access_token"])
    for method, path, body in _management_calls(mine["id"]):
        answer = await client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 403, (method, answer.text)


async def test_a_token_cannot_mint_list_or_revoke_tokens(client, db, cast):
    every = ["alerts:read", "alerts:write", "traces:write", "webhooks:manage"]
    pat = await make_pat(client, cast.headers["ke_admin"], every)
    sibling = await make_pat(client, cast.headers["ke_admin"], ["alerts:read"])
    for method, path, body in _management_calls(sibling["id"]):
        answer = await client.request(method, path, json=body, headers=bearer(pat["token"]))
        assert answer.status_code == 403, (method, answer.text)
    # Revoking itself is managing tokens too.
    answer = await client.delete(f"{TOKENS}/{pat['id']}", headers=bearer(pat["token"]))
    assert answer.status_code == 403
    async with db.session() as session:
        rows = (await session.exec(select(PersonalAccessToken))).all()
    assert len(rows) == 2 and all(r.revoked_at is None for r in rows)


# --- refused with 401 ---------------------------------------------------------------------


async def test_expired_by_one_second_is_refused(client, app, cast):
    clock = use_clock(app)
    start = clock["now"]
    pat = await make_pat(client, cast.headers["ke_reader"], ["alerts:read"], days=1)
    clock["now"] = start + timedelta(days=1) - timedelta(seconds=1)
    assert (await client.get("/api/v1/me", headers=bearer(pat["token"]))).status_code == 200
    clock["now"] = start + timedelta(days=1)
    answer = await client.get("/api/v1/me", headers=bearer(pat["token"]))
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"
    clock["now"] = start + timedelta(days=1, seconds=1)
    assert (await client.get("/api/v1/me", headers=bearer(pat["token"]))).status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        "twp_",
        "twp_" + "A" * 43,
        "twp_" + "A" * 500,
        "twp_\u00e9\u00e9\u00e9",
    ],
)
async def test_unknown_or_malformed_personal_tokens_are_401(client, cast, token):
    header = f"Bearer {token}".encode("latin-1")  # bytes a browser could send, not UTF-8
    answer = await client.get("/api/v1/me", headers={"Authorization": header})
    assert answer.status_code == 401


async def test_a_tampered_token_is_401(client, cast):
    pat = await make_pat(client, cast.headers["ke_reader"], ["alerts:read"])
    token = pat["token"]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert (await client.get("/api/v1/me", headers=bearer(flipped))).status_code == 401
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200


@pytest.mark.parametrize(
    ("change", "scopes"),
    [
        (None, ["alerts:read"]),  # an administrator's password reset
        ({"is_active": False}, ["alerts:read"]),
        ({"role": "reader"}, ["alerts:read", "alerts:write"]),  # demoted below the token
        ({"role": "focal_point"}, ["alerts:read", "webhooks:manage"]),
        ({"role": "focal_point"}, ["alerts:read"]),  # demoted, the token's scopes still held
    ],
    ids=[
        "password reset",
        "deactivated",
        "demoted to reader",
        "demoted to focal point",
        "demoted within the token's scopes",
    ],
)
async def test_a_change_to_the_user_ends_the_token(client, db, app, cast, change, scopes):
    user = await make_user(db, app.state.auth.hashing, cast.ke, Role.agency_admin)
    login = bearer((await password_login(client, user.email))["access_token"])
    pat = await make_pat(client, login, scopes)
    assert (await client.get("/api/v1/me", headers=bearer(pat["token"]))).status_code == 200
    admin = cast.headers["ke_admin"]
    if change is None:
        answer = await client.post(f"/api/v1/users/{user.id}/password-reset", headers=admin)
        assert answer.status_code == 201, answer.text
    else:
        answer = await client.patch(f"/api/v1/users/{user.id}", json=change, headers=admin)
        assert answer.status_code == 200, answer.text
    assert (await client.get("/api/v1/me", headers=bearer(pat["token"]))).status_code == 401
    # Reading alerts is refused as well as `me`: it is the token, not one route.
    assert (await client.get("/api/v1/alerts", headers=bearer(pat["token"]))).status_code == 401


async def test_a_deleted_user_s_token_is_401(client, db, app, cast):
    user = await make_user(db, app.state.auth.hashing, cast.ke, Role.reader)
    pat = await make_pat(
        client, bearer((await password_login(client, user.email))["access_token"]), ["alerts:read"]
    )
    answer = await client.delete(f"/api/v1/users/{user.id}", headers=cast.headers["ke_admin"])
    assert answer.status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(pat["token"]))).status_code == 401


async def test_a_suspended_agency_s_tokens_are_401_until_reactivated(client, cast):
    pat = await make_pat(client, cast.headers["ke_focal"], ["alerts:read"])
    operator = cast.headers["operator"]
    for status, expected in (("suspended", 401), ("active", 200)):
        answer = await client.patch(
            f"/api/v1/agencies/{cast.ke.id}", json={"status": status}, headers=operator
        )
        assert answer.status_code == 200, answer.text
        assert (
            await client.get("/api/v1/me", headers=bearer(pat["token"]))
        ).status_code == expected


async def test_a_password_reset_by_the_user_s_epoch_ends_it(client, db, cast):
    """Any move of the user's `token_epoch` (a reset, a demotion) ends the token."""
    pat = await make_pat(client, cast.headers["ke_reader"], ["alerts:read"])
    async with db.session() as session:
        user = await session.get(User, cast.users["ke_reader"].id)
        assert user is not None
        user.token_epoch += 1
        session.add(user)
        await session.commit()
    assert (await client.get("/api/v1/me", headers=bearer(pat["token"]))).status_code == 401


# --- last use -----------------------------------------------------------------------------


async def test_last_use_is_noted_at_most_once_a_minute(client, app, cast):
    clock = use_clock(app)
    start = clock["now"]
    headers = cast.headers["ke_reader"]
    pat = await make_pat(client, headers, ["alerts:read"])

    async def last_used() -> str | None:
        items = (await client.get(TOKENS, headers=headers)).json()["items"]
        return next(t["last_used_at"] for t in items if t["id"] == pat["id"])

    assert await last_used() is None
    await client.get("/api/v1/me", headers=bearer(pat["token"]))
    first = await last_used()
    assert first is not None
    assert datetime.fromisoformat(first) == start
    clock["now"] = start + timedelta(seconds=59)
    await client.get("/api/v1/me", headers=bearer(pat["token"]))
    assert await last_used() == first
    clock["now"] = start + timedelta(seconds=61)
    await client.get("/api/v1/me", headers=bearer(pat["token"]))
    later = await last_used()
    assert later is not None and datetime.fromisoformat(later) == clock["now"]


# --- audit --------------------------------------------------------------------------------


async def test_create_and_revoke_are_audited_without_the_token(client, db, cast):
    user = cast.users["ke_focal"]
    pat = await make_pat(client, cast.headers["ke_focal"], ["alerts:read"], name="audited")
    await client.delete(f"{TOKENS}/{pat['id']}", headers=cast.headers["ke_focal"])
    async with db.session() as session:
        rows = (
            await session.exec(
                select(AuditRecord)
                .where(col(AuditRecord.object_id) == pat["id"])
                .order_by(col(AuditRecord.id))
            )
        ).all()
    assert [r.action for r in rows] == ["personal_token.create", "personal_token.revoke"]
    assert all(r.actor_id == user.id and r.agency_id == cast.ke.id for r in rows)
    assert rows[0].details["scopes"] == ["alerts:read"]
    assert rows[0].details["name"] == "audited"
    assert not any(pat["token"] in str(r.model_dump()) for r in rows)
    assert not any(pat["token"][4:12] in str(r.model_dump()) for r in rows)


async def test_a_refused_create_writes_nothing(client, db, cast):
    answer = await client.post(
        TOKENS,
        json={"name": "n", "scopes": ["webhooks:manage"], "expires_in_days": 1},
        headers=cast.headers["ke_reader"],
    )
    assert answer.status_code == 422
    async with db.session() as session:
        actions = (await session.exec(select(AuditRecord.action))).all()
    assert "personal_token.create" not in actions
