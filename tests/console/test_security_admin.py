"""The console's security administration, as a browser posts it: the agency's second-factor
rule, its single sign-on provider, a user's second-factor reset and a client secret's
rotation with an overlap; and who may not."""

from __future__ import annotations

import re

import httpx

from app.agencies.models import Agency, ApiClient, User
from app.auth.models import IdentityProvider
from app.authz.principal import Role
from tests.console.helpers import console_login
from tests.factories import bearer, make_agency, make_client, make_user, password_login
from tests.secrets_seen import remember


async def test_an_admin_requires_a_second_factor_of_the_agency(client, db, app):
    agency = await make_agency(db)
    admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    csrf = await console_login(client, admin.email)
    page = await client.get("/console/admin/security")
    assert page.status_code == 200 and "Require a second factor" in page.text
    assert (
        await client.post(
            "/console/admin/security/mfa-policy", data={"csrf_token": "x", "require_mfa": "on"}
        )
    ).status_code == 403
    saved = await client.post(
        "/console/admin/security/mfa-policy", data={"csrf_token": csrf, "require_mfa": "on"}
    )
    assert saved.status_code == 303
    async with db.session() as session:
        assert (await session.get(Agency, agency.id)).require_mfa is True
    await client.post("/console/admin/security/mfa-policy", data={"csrf_token": csrf})
    async with db.session() as session:
        assert (await session.get(Agency, agency.id)).require_mfa is False


async def test_a_reader_has_no_security_page(client, db, app):
    reader = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    csrf = await console_login(client, reader.email)
    assert (await client.get("/console/admin/security")).status_code == 403
    refused = await client.post(
        "/console/admin/security/mfa-policy", data={"csrf_token": csrf, "require_mfa": "on"}
    )
    assert refused.status_code == 403


async def test_an_admin_sets_the_provider_and_the_secret_is_never_shown(client, db, app):
    agency = await make_agency(db)
    admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    csrf = await console_login(client, admin.email)
    secret = "provider-client-secret-0123456789"
    remember(secret)
    form = {
        "csrf_token": csrf,
        "issuer": "not a url",
        "client_id": "tracewire",
        "client_secret": secret,
        "email_domains": "police.example",
        "enabled": "on",
    }
    bad = await client.post("/console/admin/security/identity-provider", data=form)
    assert bad.status_code == 422 and secret not in bad.text
    form["issuer"] = "https://login.police.example"
    saved = await client.post("/console/admin/security/identity-provider", data=form)
    assert saved.status_code == 303, saved.text
    page = await client.get("/console/admin/security")
    assert "https://login.police.example" in page.text and secret not in page.text
    async with db.session() as session:
        stored = await session.get(IdentityProvider, (await _provider_id(db, agency.id)))
    assert stored.client_secret == secret and stored.email_domains == "police.example"
    # A blank secret keeps the stored one.
    form["client_secret"] = ""
    form["client_id"] = "tracewire-2"
    assert (
        await client.post("/console/admin/security/identity-provider", data=form)
    ).status_code == 303
    async with db.session() as session:
        stored = await session.get(IdentityProvider, (await _provider_id(db, agency.id)))
    assert stored.client_secret == secret and stored.client_id == "tracewire-2"
    removed = await client.post(
        "/console/admin/security/identity-provider/delete", data={"csrf_token": csrf}
    )
    assert removed.status_code == 303
    assert await _provider_id(db, agency.id) is None


async def _provider_id(db, agency_id):
    from sqlmodel import select

    async with db.session() as session:
        row = (
            await session.exec(
                select(IdentityProvider).where(IdentityProvider.agency_id == agency_id)
            )
        ).first()
    return row.id if row else None


async def test_an_admin_resets_a_users_second_factor_and_others_may_not(client, db, app):
    agency = await make_agency(db)
    admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    user = await make_user(db, app.state.auth.hashing, agency, Role.reader)
    user_tokens = bearer((await password_login(client, user.email))["access_token"])
    async with db.session() as session:  # then the user set up an authenticator
        row = await session.get(User, user.id)
        row.totp_secret, row.totp_confirmed_at = "JBSWY3DPEHPK3PXP", row.created_at
        session.add(row)
        await session.commit()
    csrf = await console_login(client, admin.email)
    page = await client.get(f"/console/admin/users?agency={agency.id}")
    assert f"Reset second factor of {user.email}" in page.text
    done = await client.post(f"/console/admin/users/{user.id}/mfa-reset", data={"csrf_token": csrf})
    assert done.status_code == 303
    async with db.session() as session:
        row = await session.get(User, user.id)
    assert row.totp_secret is None and row.totp_confirmed_at is None
    assert (await client.get("/api/v1/me", headers=user_tokens)).status_code == 401
    # Another agency's administrator gets the 404 of a user it cannot see.
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    async with other:
        stranger = await make_user(
            db, app.state.auth.hashing, await make_agency(db), Role.agency_admin
        )
        other_csrf = await console_login(other, stranger.email)
        refused = await other.post(
            f"/console/admin/users/{user.id}/mfa-reset", data={"csrf_token": other_csrf}
        )
        assert refused.status_code == 404


async def test_a_client_secret_rotates_with_an_overlap_shown_once(client, db, app):
    agency = await make_agency(db)
    admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    api_client, old_secret = await make_client(db, agency)
    csrf = await console_login(client, admin.email)
    page = await client.get("/console/admin/clients")
    assert f"New secret for {api_client.name}" in page.text
    rotated = await client.post(
        f"/console/admin/clients/{api_client.id}/rotate",
        data={"csrf_token": csrf, "overlap_seconds": "86400"},
    )
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    secret = re.search(r'id="client-secret">([^<]+)<', rotated.text).group(1)
    remember(secret)
    assert "keep working until" in rotated.text
    for presented in (old_secret, secret):  # both work during the overlap
        answer = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(str(api_client.id), presented),
        )
        assert answer.status_code == 200
        remember(answer.json()["access_token"])
    async with db.session() as session:
        stored = await session.get(ApiClient, api_client.id)
    assert stored.previous_secret_expires_at is not None
    # Without an overlap the old secret stops at once.
    again = await client.post(
        f"/console/admin/clients/{api_client.id}/rotate",
        data={"csrf_token": csrf, "overlap_seconds": "0"},
    )
    newest = re.search(r'id="client-secret">([^<]+)<', again.text).group(1)
    remember(newest)
    answer = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(str(api_client.id), secret),
    )
    assert answer.status_code == 401
