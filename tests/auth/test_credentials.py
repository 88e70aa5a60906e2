"""Credential changes end what was issued before them; client tokens carry only the scopes
asked for (RFC 6749 §3.3); `alerts:read:red` is never implied."""

from __future__ import annotations

import pytest
from jose import jwt

from app.authz.principal import Role
from tests.console.helpers import console_login
from tests.factories import (
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
    seizure_body,
)
from tests.secrets_seen import remember

TOKEN = "/api/v1/auth/token"


@pytest.fixture
def hashing(app):
    return app.state.auth.hashing


# --- issue 14 §4: a password reset and a secret rotation end what came before -------------


async def test_password_reset_ends_tokens_refresh_and_console_session(client, app, db, hashing):
    import httpx

    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    user = await make_user(db, hashing, agency, Role.focal_point)
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    tokens = await password_login(client, user.email)
    browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    )
    async with browser:
        await console_login(browser, user.email)
        assert (await browser.get("/console/")).status_code == 200
        reset = await client.post(f"/api/v1/users/{user.id}/password-reset", headers=admin_headers)
        assert reset.status_code == 201
        remember(reset.json()["token"])
        assert (
            await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
        ).status_code == 401
        refreshed = await client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
        out = await browser.get("/console/")
        assert out.status_code == 303 and out.headers["location"].startswith("/console/login")
    # The user chooses the new password with the link; it opens a new login that works,
    # and the admin's own session is untouched.
    new_password = "chosen by the user, not the admin"
    remember(new_password)
    chosen = await client.post(
        "/api/v1/auth/set-password",
        json={"token": reset.json()["token"], "password": new_password},
    )
    assert chosen.status_code == 204
    fresh = await password_login(client, user.email, new_password)
    assert (
        await client.get("/api/v1/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200
    again = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]}
    )
    assert again.status_code == 200
    assert (await client.get("/api/v1/me", headers=admin_headers)).status_code == 200


async def test_secret_rotation_ends_the_clients_access_tokens(client, db, hashing):
    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    api_client, secret = await make_client(db, agency)
    old = bearer((await client_login(client, api_client.id, secret))["access_token"])
    assert (await client.get("/api/v1/alerts", headers=old)).status_code == 200
    rotated = await client.post(
        f"/api/v1/clients/{api_client.id}/rotate-secret", headers=admin_headers
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]
    remember(new_secret)
    assert (await client.get("/api/v1/alerts", headers=old)).status_code == 401
    new = bearer((await client_login(client, api_client.id, new_secret))["access_token"])
    assert (await client.get("/api/v1/alerts", headers=new)).status_code == 200


# --- issue 13 §5: `scope=` in the client-credentials grant ---------------------------------


async def test_requested_scope_narrows_the_token(client, db):
    agency = await make_agency(db)
    api_client, secret = await make_client(db, agency, "alerts:read alerts:write")
    answer = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": "alerts:read"},
        auth=(str(api_client.id), secret),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    remember(body["access_token"])
    assert body["scope"] == "alerts:read"
    assert jwt.get_unverified_claims(body["access_token"])["scope"] == "alerts:read"
    headers = bearer(body["access_token"])
    me = await client.get("/api/v1/me", headers=headers)
    assert me.json()["scopes"] == ["alerts:read"]
    post = await client.post("/api/v1/alerts", json=seizure_body(publish=True), headers=headers)
    assert post.status_code == 403  # alerts:write was not asked for
    full = await client_login(client, api_client.id, secret)  # no scope: everything it holds
    assert full["scope"] == "alerts:read alerts:write"


@pytest.mark.parametrize(
    "scope", ["alerts:write", "alerts:read webhooks:manage", "admin", "alerts:read:red"]
)
async def test_a_scope_the_client_lacks_is_invalid_scope(client, db, scope):
    agency = await make_agency(db)
    api_client, secret = await make_client(db, agency, "alerts:read")
    answer = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(str(api_client.id), secret),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"
    assert "access_token" not in answer.text


async def test_red_scope_is_never_implied(client, db, hashing):
    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    headers = bearer((await password_login(client, admin.email))["access_token"])
    me = await client.get("/api/v1/me", headers=headers)
    assert "alerts:read:red" not in me.json()["scopes"]
    default = await client.post(
        f"/api/v1/agencies/{agency.id}/clients", json={"name": "Default"}, headers=headers
    )
    assert default.status_code == 201 and default.json()["scopes"] == ["alerts:read"]
    remember(default.json()["client_secret"])
    granted = await client.post(
        f"/api/v1/agencies/{agency.id}/clients",
        json={"name": "Red reader", "scopes": ["alerts:read", "alerts:read:red"]},
        headers=headers,
    )
    assert granted.status_code == 201
    remember(granted.json()["client_secret"])
    assert granted.json()["scopes"] == ["alerts:read", "alerts:read:red"]
