"""The token endpoint's grants, refresh rotation, revocation, and who gets locked out."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from jose import jwt
from sqlmodel import select

from app.agencies.models import User
from app.auth.models import AuthSession, RefreshToken, RevokedToken
from app.authz.principal import Role
from app.core.config import Settings
from app.core.tokens import KeyRing
from app.core.types import utcnow
from tests.factories import (
    PASSWORD,
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
)

TOKEN = "/api/v1/auth/token"


@pytest.fixture
def hashing(app):
    return app.state.auth.hashing


async def test_password_grant_gives_working_tokens(client, db, hashing, settings: Settings):
    agency = await make_agency(db)
    user = await make_user(db, hashing, agency, Role.focal_point)
    tokens = await password_login(client, user.email.upper())  # case-insensitive login
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == settings.access_token_ttl_seconds
    assert tokens["refresh_token"].startswith("twr_")
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    body = me.json()
    assert body["id"] == str(user.id)
    assert body["role"] == "focal_point"
    assert body["agency"]["id"] == str(agency.id)
    claims = jwt.get_unverified_claims(tokens["access_token"])
    assert {"iss", "aud", "exp", "iat", "jti", "sub", "agency", "role", "scope"} <= set(claims)
    assert jwt.get_unverified_header(tokens["access_token"])["kid"] == settings.jwt_active_kid


async def test_refresh_token_is_stored_hashed(client, db, hashing):
    user = await make_user(db, hashing, await make_agency(db))
    tokens = await password_login(client, user.email)
    async with db.session() as session:
        stored = (await session.exec(select(RefreshToken))).all()
    assert len(stored) == 1
    assert tokens["refresh_token"] not in stored[0].token_hash
    assert len(stored[0].token_hash) == 64


@pytest.mark.parametrize(
    ("username", "password"),
    [("known", "wrong password here"), ("unknown@tracewire.example", PASSWORD)],
)
async def test_bad_login_gives_one_answer_whether_or_not_account_exists(
    client, db, hashing, username, password
):
    user = await make_user(db, hashing, await make_agency(db))
    answer = await client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": user.email if username == "known" else username,
            "password": password,
        },
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["detail"] == "Invalid username or password."
    assert answer.headers["cache-control"] == "no-store"


async def test_unsupported_grant_is_a_validation_problem(client):
    answer = await client.post(TOKEN, data={"grant_type": "implicit"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.grant_type"


@pytest.mark.parametrize("style", ["basic", "post"])
async def test_client_credentials_grant(client, db, style):
    agency = await make_agency(db)
    api_client, secret = await make_client(db, agency, "alerts:read alerts:write")
    if style == "basic":
        tokens = await client_login(client, api_client.id, secret)
    else:
        answer = await client.post(
            TOKEN,
            data={
                "grant_type": "client_credentials",
                "client_id": str(api_client.id),
                "client_secret": secret,
            },
        )
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "alerts:read alerts:write"
    me = (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["kind"] == "client"
    assert me["role"] is None
    assert me["scopes"] == ["alerts:read", "alerts:write"]


async def test_client_with_wrong_secret_is_refused(client, db):
    api_client, _ = await make_client(db, await make_agency(db))
    answer = await client.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=(str(api_client.id), "tws_wrong")
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


async def test_refresh_rotates_and_reuse_revokes_the_family(client, db, hashing):
    user = await make_user(db, hashing, await make_agency(db))
    first = await password_login(client, user.email)
    second = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        await client.get("/api/v1/me", headers=bearer(second["access_token"]))
    ).status_code == 200

    # The first refresh token comes back: someone copied it. The whole login ends.
    replay = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert replay.headers["cache-control"] == "no-store"  # a refusal kept, then answered
    async with db.session() as session:
        login = (await session.exec(select(AuthSession))).one()
    assert login.revoked_reason == "refresh_token_reuse"
    for token in (first["access_token"], second["access_token"]):
        assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    after = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    )
    assert after.status_code == 400


async def test_revoke_refresh_token_ends_login(client, db, hashing):
    user = await make_user(db, hashing, await make_agency(db))
    tokens = await password_login(client, user.email)
    answer = await client.post("/api/v1/auth/revoke", data={"token": tokens["refresh_token"]})
    assert answer.status_code == 200
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    refresh = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 400


async def test_revoked_access_token_is_refused(client, db, hashing):
    agency = await make_agency(db)
    api_client, secret = await make_client(db, agency)
    tokens = await client_login(client, api_client.id, secret)
    assert (
        await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200
    assert (
        await client.post("/api/v1/auth/revoke", data={"token": tokens["access_token"]})
    ).status_code == 200
    assert (
        await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401


async def test_a_user_access_token_on_the_revocation_list_is_refused(
    client, db, hashing, settings: Settings
):
    user = await make_user(db, hashing, await make_agency(db))
    tokens = await password_login(client, user.email)
    access = tokens["access_token"]
    assert (await client.get("/api/v1/me", headers=bearer(access))).status_code == 200
    # The list alone refuses it, with its login still open (revoke also ends the login).
    jti = KeyRing(settings).verify(access)["jti"]
    async with db.session() as session:
        session.add(RevokedToken(jti=jti, expires_at=utcnow() + timedelta(minutes=5)))
        await session.commit()
    assert (await client.get("/api/v1/me", headers=bearer(access))).status_code == 401
    assert (
        await client.get(
            "/api/v1/me", headers=bearer((await password_login(client, user.email))["access_token"])
        )
    ).status_code == 200


async def test_revoke_of_unknown_token_is_not_an_error(client):
    answer = await client.post("/api/v1/auth/revoke", data={"token": "not-a-token"})
    assert answer.status_code == 200


async def test_suspended_agency_is_locked_out(client, db, hashing):
    agency = await make_agency(db)
    operator = await make_agency(db, country="XX")
    admin = await make_user(db, hashing, operator, Role.platform_admin)
    user = await make_user(db, hashing, agency, Role.agency_admin)
    api_client, secret = await make_client(db, agency)
    admin_token = (await password_login(client, admin.email))["access_token"]
    user_tokens = await password_login(client, user.email)
    client_token = (await client_login(client, api_client.id, secret))["access_token"]

    suspend = await client.patch(
        f"/api/v1/agencies/{agency.id}", json={"status": "suspended"}, headers=bearer(admin_token)
    )
    assert suspend.status_code == 200
    for token in (user_tokens["access_token"], client_token):
        assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    login = await client.post(
        TOKEN, data={"grant_type": "password", "username": user.email, "password": PASSWORD}
    )
    assert login.status_code == 400
    refresh = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": user_tokens["refresh_token"]}
    )
    assert refresh.status_code == 400
    creds = await client.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=(str(api_client.id), secret)
    )
    assert creds.status_code == 401

    reactivate = await client.patch(
        f"/api/v1/agencies/{agency.id}", json={"status": "active"}, headers=bearer(admin_token)
    )
    assert reactivate.status_code == 200
    assert (
        await client.get("/api/v1/me", headers=bearer(user_tokens["access_token"]))
    ).status_code == 200


async def test_demoted_user_loses_rights_at_once(client, db, hashing):
    agency = await make_agency(db)
    boss = await make_user(db, hashing, agency, Role.agency_admin)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    token = (await password_login(client, admin.email))["access_token"]
    boss_token = (await password_login(client, boss.email))["access_token"]
    assert (
        await client.get(f"/api/v1/agencies/{agency.id}/users", headers=bearer(token))
    ).status_code == 200
    demote = await client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "reader"}, headers=bearer(boss_token)
    )
    assert demote.status_code == 200
    # A role change ends the user's sessions: the token opened under the old role is dead.
    assert (
        await client.get(f"/api/v1/agencies/{agency.id}/users", headers=bearer(token))
    ).status_code == 401


async def test_deleted_and_deactivated_users_are_locked_out(client, db, hashing):
    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    gone = await make_user(db, hashing, agency)
    idle = await make_user(db, hashing, agency)
    admin_token = (await password_login(client, admin.email))["access_token"]
    gone_token = (await password_login(client, gone.email))["access_token"]
    idle_token = (await password_login(client, idle.email))["access_token"]
    assert (
        await client.delete(f"/api/v1/users/{gone.id}", headers=bearer(admin_token))
    ).status_code == 204
    assert (
        await client.patch(
            f"/api/v1/users/{idle.id}", json={"is_active": False}, headers=bearer(admin_token)
        )
    ).status_code == 200
    for token in (gone_token, idle_token):
        assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    async with db.session() as session:
        kept = await session.get(User, gone.id)
    assert kept is not None and kept.deleted_at is not None


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _forged_tokens(settings: Settings, subject: str, agency: str) -> dict[str, str]:
    """Tokens that must all be refused, each crafted with the real libraries."""
    keys = KeyRing(settings)
    base = {"sub": subject, "typ": "client", "agency": agency}
    now = int(time.time())
    claims = {
        **base,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 300,
        "jti": "x" * 16,
    }
    secret = settings.active_jwt_key.secret.get_secret_value()
    kid = settings.jwt_active_kid
    other = settings.model_copy(update={"jwt_issuer": "someone-else"})
    other_aud = settings.model_copy(update={"jwt_audience": "another-api"})
    return {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}.",
        "wrong_algorithm": jwt.encode(claims, secret, algorithm="HS512", headers={"kid": kid}),
        "wrong_key": jwt.encode(claims, "k" * 48, algorithm="HS256", headers={"kid": kid}),
        "unknown_kid": jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "nope"}),
        "expired": keys.sign(base, ttl=timedelta(seconds=60), now=utcnow() - timedelta(hours=1)),
        "wrong_iss": KeyRing(other).sign(base, ttl=timedelta(minutes=5)),
        "wrong_aud": KeyRing(other_aud).sign(base, ttl=timedelta(minutes=5)),
        "no_exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            secret,
            algorithm="HS256",
            headers={"kid": kid},
        ),
    }


@pytest.mark.parametrize(
    "attack",
    [
        "alg_none",
        "wrong_algorithm",
        "wrong_key",
        "unknown_kid",
        "expired",
        "wrong_iss",
        "wrong_aud",
        "no_exp",
    ],
)
async def test_forged_tokens_get_401(client, db, settings, attack):
    agency = await make_agency(db)
    api_client, secret = await make_client(db, agency)
    good = (await client_login(client, api_client.id, secret))["access_token"]
    assert (await client.get("/api/v1/me", headers=bearer(good))).status_code == 200
    token = _forged_tokens(settings, str(api_client.id), str(agency.id))[attack]
    answer = await client.get("/api/v1/me", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer ", "Basic abc", "Token xyz", "Bearer not.a.jwt"]
)
async def test_missing_or_malformed_authorization_gets_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    answer = await client.get("/api/v1/me", headers=headers)
    assert answer.status_code == 401


async def test_failed_logins_back_off_alike_for_known_and_unknown_accounts(client, db, app):
    import dataclasses

    user = await make_user(db, app.state.auth.hashing, await make_agency(db))
    clock = {"now": utcnow()}
    app.state.auth = dataclasses.replace(app.state.auth, clock=lambda: clock["now"])
    limit = app.state.settings.login_max_failures

    async def attempt(username: str, password: str):
        return await client.post(
            TOKEN, data={"grant_type": "password", "username": username, "password": password}
        )

    for username in (user.email, "ghost@tracewire.example"):
        answers = [
            (await attempt(username, "not the password")).status_code for _ in range(limit + 1)
        ]
        assert answers == [400] * limit + [429], username
        blocked = await attempt(username, PASSWORD)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert blocked.json()["error"] == "slow_down"
    # Time passes: the known account logs in again, and the counter is cleared.
    clock["now"] += timedelta(seconds=app.state.settings.login_backoff_max_seconds + 1)
    assert (await attempt(user.email, PASSWORD)).status_code == 200
    assert (await attempt(user.email, "wrong again")).status_code == 400
