"""Agencies, users and clients: what the admin endpoints store and answer."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from app.agencies.models import ApiClient, User
from app.authz.principal import Role
from tests.factories import (
    PASSWORD,
    bearer,
    make_agency,
    make_user,
    password_login,
)
from tests.secrets_seen import remember


@pytest.fixture
async def admin(client, db, app):
    """A platform administrator's headers."""
    operator = await make_agency(db, country="XX")
    user = await make_user(db, app.state.auth.hashing, operator, Role.platform_admin)
    return bearer((await password_login(client, user.email))["access_token"])


@pytest.fixture
async def local(client, db, app):
    """An agency and its own administrator's headers (who manage its users and clients)."""
    agency = await make_agency(db)
    user = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    return agency, bearer((await password_login(client, user.email))["access_token"])


async def test_agency_lifecycle(client, admin):
    created = await client.post(
        "/api/v1/agencies",
        json={"name": "Kenya Police", "country": "KE", "type": "police", "is_focal_point": True},
        headers=admin,
    )
    assert created.status_code == 201
    agency = created.json()
    assert agency["status"] == "active"
    duplicate = await client.post(
        "/api/v1/agencies",
        json={"name": "Kenya Police", "country": "KE", "type": "police"},
        headers=admin,
    )
    assert duplicate.status_code == 409
    fetched = await client.get(f"/api/v1/agencies/{agency['id']}", headers=admin)
    assert fetched.json() == agency
    suspended = await client.patch(
        f"/api/v1/agencies/{agency['id']}", json={"status": "suspended"}, headers=admin
    )
    assert suspended.json()["status"] == "suspended"
    listed = await client.get("/api/v1/agencies?status=suspended", headers=admin)
    assert [a["id"] for a in listed.json()["items"]] == [agency["id"]]
    null_name = await client.patch(
        f"/api/v1/agencies/{agency['id']}", json={"name": None}, headers=admin
    )
    assert null_name.status_code == 422


async def test_missing_agency_is_404(client, admin):
    answer = await client.get(
        "/api/v1/agencies/00000000-0000-4000-8000-000000000000", headers=admin
    )
    assert answer.status_code == 404


async def test_agency_pagination_is_stable_and_complete(client, db, admin):
    for i in range(7):
        await make_agency(db, name=f"Paged agency {i}")
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/agencies?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=admin)).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = (await client.get("/api/v1/agencies?limit=500", headers=admin)).json()
    assert seen == [a["id"] for a in everything["items"]]
    assert len(seen) == len(set(seen)) == 8  # seven plus the operator's agency


async def test_user_email_is_unique_case_insensitively(client, db, local):
    agency, admin = local
    body = {"email": "Focal.Point@Tracewire.Example", "full_name": "FP", "password": PASSWORD}
    first = await client.post(f"/api/v1/agencies/{agency.id}/users", json=body, headers=admin)
    assert first.status_code == 201
    assert first.json()["email"] == "focal.point@tracewire.example"
    again = await client.post(
        f"/api/v1/agencies/{agency.id}/users",
        json={**body, "email": "FOCAL.POINT@tracewire.example"},
        headers=admin,
    )
    assert again.status_code == 409
    # The address is free again once the account is deleted.
    deleted = await client.delete(f"/api/v1/users/{first.json()['id']}", headers=admin)
    assert deleted.status_code == 204
    assert (
        await client.get(f"/api/v1/users/{first.json()['id']}", headers=admin)
    ).status_code == 404
    reused = await client.post(f"/api/v1/agencies/{agency.id}/users", json=body, headers=admin)
    assert reused.status_code == 201


async def test_user_password_is_hashed_and_policy_enforced(client, db, local):
    agency, admin = local
    short = await client.post(
        f"/api/v1/agencies/{agency.id}/users",
        json={"email": "a@tracewire.example", "full_name": "A", "password": "tooshort"},
        headers=admin,
    )
    assert short.status_code == 422
    created = await client.post(
        f"/api/v1/agencies/{agency.id}/users",
        json={"email": "a@tracewire.example", "full_name": "A", "password": PASSWORD},
        headers=admin,
    )
    assert "password" not in created.text
    async with db.session() as session:
        user = (await session.exec(select(User).where(User.email == "a@tracewire.example"))).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    # A new password comes from the user, through a reset link, under the same policy.
    reset = await client.post(f"/api/v1/users/{user.id}/password-reset", headers=admin)
    assert reset.status_code == 201
    token = reset.json()["token"]
    remember(token)
    short = await client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "tooshort"}
    )
    assert short.status_code == 422
    changed = await client.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "a brand new passphrase"}
    )
    assert changed.status_code == 204
    async with db.session() as session:
        stored = await session.get(User, user.id)
    assert stored.password_hash.startswith("$argon2id$")
    assert "a brand new passphrase" not in stored.password_hash
    await password_login(client, "a@tracewire.example", "a brand new passphrase")


async def test_client_secret_shown_once_stored_hashed_and_rotated(client, db, local):
    agency, admin = local
    created = await client.post(
        f"/api/v1/agencies/{agency.id}/clients",
        json={"name": "Partner", "scopes": ["alerts:read", "webhooks:manage"]},
        headers=admin,
    )
    assert created.status_code == 201
    body = created.json()
    secret = body["client_secret"]
    assert secret.startswith("tws_")
    assert body["scopes"] == ["alerts:read", "webhooks:manage"]
    listed = await client.get(f"/api/v1/agencies/{agency.id}/clients", headers=admin)
    assert secret not in listed.text
    assert "client_secret" not in listed.json()["items"][0]
    async with db.session() as session:
        stored = await session.get(ApiClient, uuid.UUID(body["id"]))
    assert secret not in stored.secret_hash

    def creds(s: str) -> dict:
        return {"grant_type": "client_credentials", "client_id": body["id"], "client_secret": s}

    assert (await client.post("/api/v1/auth/token", data=creds(secret))).status_code == 200
    rotated = await client.post(f"/api/v1/clients/{body['id']}/rotate-secret", headers=admin)
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    assert (await client.post("/api/v1/auth/token", data=creds(secret))).status_code == 401
    token = (await client.post("/api/v1/auth/token", data=creds(new_secret))).json()
    assert (await client.delete(f"/api/v1/clients/{body['id']}", headers=admin)).status_code == 204
    assert (await client.post("/api/v1/auth/token", data=creds(new_secret))).status_code == 401
    me = await client.get("/api/v1/me", headers=bearer(token["access_token"]))
    assert me.status_code == 401


async def test_client_scopes_are_validated(client, db, local):
    agency, admin = local
    answer = await client.post(
        f"/api/v1/agencies/{agency.id}/clients",
        json={"name": "Partner", "scopes": ["alerts:read", "admin:everything"]},
        headers=admin,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.scopes.1"


async def test_admins_cannot_lock_themselves_out(client, db, app):
    agency = await make_agency(db)
    me = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    headers = bearer((await password_login(client, me.email))["access_token"])
    for method, body in (
        ("DELETE", None),
        ("PATCH", {"is_active": False}),
        ("PATCH", {"role": "reader"}),
    ):
        answer = await client.request(method, f"/api/v1/users/{me.id}", json=body, headers=headers)
        assert answer.status_code == 409


async def test_create_user_with_idempotency_key_creates_once(client, db, local):
    agency, admin = local
    body = {"email": "once@tracewire.example", "full_name": "Once", "password": PASSWORD}
    headers = {**admin, "Idempotency-Key": "user-once"}
    first = await client.post(f"/api/v1/agencies/{agency.id}/users", json=body, headers=headers)
    again = await client.post(f"/api/v1/agencies/{agency.id}/users", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    listed = await client.get(f"/api/v1/agencies/{agency.id}/users", headers=admin)
    assert [u["email"] for u in listed.json()["items"]].count("once@tracewire.example") == 1
