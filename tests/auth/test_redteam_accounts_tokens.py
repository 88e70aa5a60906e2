"""Red team: personal access tokens (`twp_`) and the app's other signed values against every
place a token is accepted."""

from __future__ import annotations

import base64

import httpx
import pytest

from app.authz.principal import Role
from tests.console.helpers import login_page
from tests.factories import PASSWORD, bearer, make_agency, make_user, password_login
from tests.secrets_seen import remember

TOKENS = "/api/v1/me/tokens"
READ = "/api/v1/alerts"


async def _pat(client: httpx.AsyncClient, headers: dict[str, str], scopes: list[str]) -> str:
    made = await client.post(
        TOKENS, json={"name": "script", "scopes": scopes, "expires_in_days": 90}, headers=headers
    )
    assert made.status_code == 201, made.text
    remember(made.json()["token"])
    return made.json()["token"]


async def test_redteam_oauth_revoke_of_a_personal_token_really_revokes_it(client, db, app):
    """FAILS today (finding). Attack/mistake: a user whose script token leaked sends it to
    the OAuth revocation endpoint (RFC 7009), the standard place to kill a bearer token.
    The answer is 200 `{"status": "revoked"}`, yet the token keeps reading alerts: a
    leaked token the owner believes dead stays live for its whole lifetime (up to a year).

    Expected safe behaviour: a `twp_` token sent to `/auth/revoke` is revoked (it answers
    401 afterwards), or the endpoint does not claim to have revoked it."""
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    login = bearer((await password_login(client, user.email))["access_token"])
    token = await _pat(client, login, ["alerts:read"])
    assert (await client.get(READ, headers=bearer(token))).status_code == 200
    revoked = await client.post("/api/v1/auth/revoke", data={"token": token})
    assert revoked.status_code == 200
    still = await client.get(READ, headers=bearer(token))
    assert still.status_code == 401 or revoked.json() != {"status": "revoked"}, (
        "the revocation endpoint said 'revoked' but the personal token still works"
    )


async def test_redteam_personal_token_stops_when_the_agency_requires_mfa(client, db, app):
    """FAILS today (finding). Attack: an attacker with a user's stolen password (no second
    factor yet) makes a 365-day personal access token. The agency then requires a second
    factor. The password grant now refuses (`mfa_enrollment_required`) and a refresh token
    renews nothing for this user, but the token keeps reading alerts for a year, and an
    access token from before the rule can still mint new ones: the rule never bites.

    Expected safe behaviour: like the refresh grant, a personal token of a user whom a
    second-factor rule requires to enrol and who has not is refused (401), and no new one
    is made for them (403)."""
    hashing = app.state.auth.hashing
    agency = await make_agency(db)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    victim = await make_user(db, hashing, agency, Role.reader)
    stolen = bearer((await password_login(client, victim.email))["access_token"])
    token = await _pat(client, stolen, ["alerts:read"])

    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    rule = await client.put(
        f"/api/v1/agencies/{agency.id}/mfa-policy",
        json={"require_mfa": True},
        headers=admin_headers,
    )
    assert rule.status_code == 200, rule.text
    refused = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": victim.email, "password": PASSWORD},
    )
    assert refused.json().get("error") == "mfa_enrollment_required"

    after_rule = await client.get(READ, headers=bearer(token))
    made_after = await client.post(
        TOKENS,
        json={"name": "another", "scopes": ["alerts:read"], "expires_in_days": 365},
        headers=stolen,
    )
    if made_after.status_code == 201:
        remember(made_after.json()["token"])
    assert after_rule.status_code == 401, "a personal token outlives the agency's MFA rule"
    assert made_after.status_code in (401, 403), "a new year-long token made under the rule"


# --- Passing defences (regression tests): every other signed value is refused as a token.


async def _pending_cookie(client: httpx.AsyncClient, email: str) -> str:
    token = await login_page(client)
    answer = await client.post(
        "/console/login",
        data={"login_csrf": token, "email": email, "password": PASSWORD, "next": "/console/"},
    )
    assert answer.status_code == 303, answer.text
    pending = client.cookies.get("tw_console_mfa")
    assert pending
    remember(pending)
    return pending


@pytest.fixture
async def signed_values(client, db, app) -> dict[str, str]:
    """A pending-MFA cookie and a WebAuthn challenge cookie: JWTs signed with the app's
    key ring, with `sub`, `iss`, `aud`, `exp`, `iat` and `jti`."""
    agency = await make_agency(db)
    agency.require_mfa = True
    async with db.session() as session:
        session.add(agency)
        await session.commit()
    user = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    pending = await _pending_cookie(client, user.email)
    token = await login_page(client)
    await client.post("/console/login/passkey/options", headers={"X-Login-CSRF": token})
    challenge = client.cookies.get("tw_console_webauthn")
    assert challenge
    client.cookies.clear()
    return {"pending": pending, "challenge": challenge, "user_id": str(user.id)}


async def test_redteam_passing_pending_and_challenge_jwts_are_no_bearer_token(
    client, signed_values
):
    """PASSES (defence holds). A stolen pending-MFA cookie or WebAuthn challenge cookie is a
    JWT from the same key ring as access tokens; as a bearer token, a TAXII Basic password,
    a refresh token or a console session it opens nothing."""
    for name in ("pending", "challenge"):
        value = signed_values[name]
        for path in (READ, TOKENS, "/api/v1/me/mfa", "/taxii2/"):
            answer = await client.get(path, headers=bearer(value))
            assert answer.status_code == 401, (name, path, answer.status_code)
        basic = base64.b64encode(f"{signed_values['user_id']}:{value}".encode()).decode()
        taxii = await client.get("/taxii2/", headers={"Authorization": f"Basic {basic}"})
        assert taxii.status_code == 401, (name, taxii.status_code)
        refresh = await client.post(
            "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": value}
        )
        assert refresh.status_code in (400, 422) and "access_token" not in refresh.json()
        client.cookies.set("tw_console", value, path="/console")
        page = await client.get("/console/", follow_redirects=False)
        assert page.status_code in (302, 303), (name, page.status_code)
        client.cookies.clear()


async def test_redteam_passing_personal_token_manages_no_credentials(client, db, app):
    """PASSES (defence holds). A stolen personal token, even of an agency administrator with
    every scope, changes no password, mints no token, sets up or removes no second factor,
    issues no reset link, sets no SSO provider, and is no HTTP Basic secret."""
    agency = await make_agency(db)
    hashing = app.state.auth.hashing
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    other = await make_user(db, hashing, agency, Role.reader)
    login = bearer((await password_login(client, admin.email))["access_token"])
    scopes = ["alerts:read", "alerts:write", "traces:write", "webhooks:manage"]
    pat = bearer(await _pat(client, login, scopes))
    attempts = [
        ("POST", TOKENS, {"name": "x", "scopes": ["alerts:read"], "expires_in_days": 1}),
        ("GET", TOKENS, None),
        ("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "x" * 20}),
        ("POST", "/api/v1/me/mfa/totp", None),
        ("POST", f"/api/v1/users/{other.id}/password-reset", None),
        ("POST", f"/api/v1/users/{other.id}/mfa-reset", None),
        ("PUT", f"/api/v1/agencies/{agency.id}/mfa-policy", {"require_mfa": False}),
        (
            "PUT",
            f"/api/v1/agencies/{agency.id}/identity-provider",
            {
                "issuer": "https://idp.example.org",
                "client_id": "x",
                "client_secret": "y",
                "email_domains": ["example.org"],
            },
        ),
        ("PATCH", f"/api/v1/users/{other.id}", {"role": "agency_admin"}),
    ]
    for method, path, body in attempts:
        answer = await client.request(method, path, json=body, headers=pat)
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
    token = pat["Authorization"].removeprefix("Bearer ")
    basic = base64.b64encode(f"{admin.id}:{token}".encode()).decode()
    taxii = await client.get("/taxii2/", headers={"Authorization": f"Basic {basic}"})
    assert taxii.status_code == 401
