"""`/api/v1/agencies/{agency_id}/identity-provider`: who may set it, what is refused (a
problem naming the field, nothing stored), and that the secret never comes back."""

from __future__ import annotations

import secrets

import pytest
from sqlmodel import select

from app.audit.models import AuditRecord
from app.auth.models import IdentityProvider
from tests.secrets_seen import remember

ISSUER = "https://login.kenya-police.example"


def body(**changes) -> dict:
    secret = secrets.token_urlsafe(24)
    remember(secret)
    return {
        "issuer": ISSUER,
        "client_id": "tracewire",
        "client_secret": secret,
        "email_domains": ["kenya-police.example"],
    } | changes


def url(actor) -> str:
    return f"/api/v1/agencies/{actor.agency.id}/identity-provider"


async def test_an_agency_admin_sets_reads_and_removes_it_without_the_secret_coming_back(
    client, db, world
):
    admin = world["KE_admin"]
    sent = body(create_users=True)
    created = await client.put(url(admin), json=sent, headers=admin.headers)
    assert created.status_code == 201, created.text
    read = await client.get(url(admin), headers=admin.headers)
    assert read.status_code == 200
    assert read.json() | {"created_at": None, "updated_at": None} == {
        "agency_id": str(admin.agency.id),
        "issuer": ISSUER,
        "client_id": "tracewire",
        "email_claim": "email",
        "email_domains": ["kenya-police.example"],
        "create_users": True,
        "enabled": True,
        "redirect_uri": "http://127.0.0.1:8000/console/login/sso/callback",
        "created_at": None,
        "updated_at": None,
    }
    # Left out, the secret is kept.
    changed = await client.put(
        url(admin),
        json={k: v for k, v in body(email_claim="upn").items() if k != "client_secret"},
        headers=admin.headers,
    )
    assert changed.status_code == 200 and changed.json()["email_claim"] == "upn"
    async with db.session() as session:
        stored = (await session.exec(select(IdentityProvider))).one()
        assert stored.client_secret == sent["client_secret"]
        records = (
            await session.exec(
                select(AuditRecord).where(AuditRecord.object_type == "identity_provider")
            )
        ).all()
    assert [r.action for r in records] == ["identity_provider.set"] * 2
    assert all(sent["client_secret"] not in str(r.details) for r in records)
    for answer in (created, read, changed):
        assert sent["client_secret"] not in answer.text

    assert (await client.delete(url(admin), headers=admin.headers)).status_code == 204
    assert (await client.get(url(admin), headers=admin.headers)).status_code == 404


@pytest.mark.parametrize(
    ("actor", "status"), [("KE", 403), ("DE_admin", 404)], ids=["focal point", "other admin"]
)
async def test_only_the_agencys_own_admins_may(client, world, actor, status):
    target = world["KE_admin"]
    for method in ("PUT", "GET", "DELETE"):
        answer = await client.request(
            method,
            url(target),
            json=body() if method == "PUT" else None,
            headers=world[actor].headers,
        )
        assert answer.status_code == status, (method, answer.text)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"issuer": "http://login.kenya-police.example"}, "body.issuer"),
        ({"issuer": "https://user:pw@login.kenya-police.example"}, "body.issuer"),
        ({"issuer": "not a url"}, "body.issuer"),
        ({"email_domains": []}, "body.email_domains"),
        ({"email_domains": ["@kenya-police.example"]}, "body.email_domains.0"),
        ({"client_secret": None}, "body.client_secret"),
        ({"client_id": ""}, "body.client_id"),
        ({"email_claim": "e mail"}, "body.email_claim"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_nothing_is_stored(
    client, db, world, changes, field
):
    admin = world["KE_admin"]
    answer = await client.put(url(admin), json=body(**changes), headers=admin.headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]]
    async with db.session() as session:
        assert (await session.exec(select(IdentityProvider))).first() is None


async def test_a_domain_another_agency_claimed_is_refused(client, world):
    assert (
        await client.put(url(world["DE_admin"]), json=body(), headers=world["DE_admin"].headers)
    ).status_code == 201
    answer = await client.put(
        url(world["KE_admin"]), json=body(), headers=world["KE_admin"].headers
    )
    assert answer.status_code == 409
    assert [e["field"] for e in answer.json()["errors"]] == ["body.email_domains"]
