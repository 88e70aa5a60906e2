"""Red team: reset links and role changes against stale credentials (passing defences)."""

from __future__ import annotations

from app.authz.principal import Role
from tests.factories import PASSWORD, bearer, make_agency, make_user, password_login
from tests.secrets_seen import remember

NEW_PASSWORD = "a brand new passphrase 42"


async def test_redteam_passing_older_reset_link_dies_with_a_newer_one(client, db, app):
    """PASSES (defence holds). Attack: an attacker who intercepted the first reset link
    uses it after the administrator issued a second one. The older link is refused, the
    newer one works once, and a replay of it is refused; tokens from before are dead."""
    hashing = app.state.auth.hashing
    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    user = await make_user(db, hashing, agency, Role.focal_point)
    before = bearer((await password_login(client, user.email))["access_token"])
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    links = []
    for _ in range(2):
        issued = await client.post(f"/api/v1/users/{user.id}/password-reset", headers=admin_headers)
        assert issued.status_code == 201, issued.text
        links.append(issued.json()["token"])
    remember(*links, NEW_PASSWORD)
    old = await client.post(
        "/api/v1/auth/set-password", json={"token": links[0], "password": "attacker's password!"}
    )
    assert old.status_code == 422, old.text
    new = await client.post(
        "/api/v1/auth/set-password", json={"token": links[1], "password": NEW_PASSWORD}
    )
    assert new.status_code in (200, 204), new.text
    replay = await client.post(
        "/api/v1/auth/set-password", json={"token": links[1], "password": "attacker's password!"}
    )
    assert replay.status_code == 422
    assert (await client.get("/api/v1/alerts", headers=before)).status_code == 401
    refused = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user.email, "password": PASSWORD},
    )
    assert refused.status_code == 400
    await password_login(client, user.email, NEW_PASSWORD)


async def test_redteam_passing_demotion_ends_every_token_and_session(client, db, app):
    """PASSES (defence holds). Attack: a focal point about to be demoted keeps an access
    token, a refresh token and a personal token with `alerts:write`. After the demotion to
    reader none of them works any more (401 / invalid_grant)."""
    hashing = app.state.auth.hashing
    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    user = await make_user(db, hashing, agency, Role.focal_point)
    tokens = await password_login(client, user.email)
    headers = bearer(tokens["access_token"])
    made = await client.post(
        "/api/v1/me/tokens",
        json={"name": "w", "scopes": ["alerts:read", "alerts:write"], "expires_in_days": 30},
        headers=headers,
    )
    assert made.status_code == 201
    remember(made.json()["token"])
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    demoted = await client.patch(
        f"/api/v1/users/{user.id}", json={"role": "reader"}, headers=admin_headers
    )
    assert demoted.status_code == 200, demoted.text
    assert (await client.get("/api/v1/alerts", headers=headers)).status_code == 401
    pat = bearer(made.json()["token"])
    assert (await client.get("/api/v1/alerts", headers=pat)).status_code == 401
    renewed = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert renewed.status_code == 400 and "access_token" not in renewed.json()
