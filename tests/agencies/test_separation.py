"""Separation of duties (DESIGN §2): running the platform gives no right to read traffic.

A platform administrator registers, suspends and reactivates agencies and invites an
agency's *first* administrator (who sets their own password); it never creates another
agency's users, sets their passwords, creates their API clients, or edits their groups or
policy, and the operator's own agency is never a recipient or a group member. What it
does to an agency is in that agency's audit trail too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from app.agencies.models import Agency, ApiClient, SetPasswordToken, User
from app.authz.principal import Role
from app.core.db import Database
from app.core.types import utcnow
from app.sharing.models import SharingGroupMember, SharingPolicy
from tests.conftest import random_email
from tests.console.helpers import console_login, csrf_of
from tests.factories import (
    PASSWORD,
    Actor,
    make_actor,
    make_agency,
    make_client,
    password_login,
    post_alert,
    seizure_body,
    trace_body,
)
from tests.secrets_seen import remember


async def make_operator_agency(db: Database) -> Agency:
    """The operator's agency, flagged as `tracewire create-admin` flags it."""
    agency = await make_agency(db, country="XX", name=f"Operations {uuid.uuid4().hex[:6]}")
    async with db.session() as session:
        row = await session.get(Agency, agency.id)
        assert row is not None
        row.is_operator = True
        session.add(row)
        await session.commit()
    agency.is_operator = True
    return agency


@dataclass
class World:
    operator: Agency
    staff: Actor  # platform_admin
    b: Agency
    b_admin: Actor
    b_focal: Actor
    group_id: str


@pytest.fixture
async def world(client, db, app) -> World:
    hashing = app.state.auth.hashing
    operator = await make_operator_agency(db)
    b = await make_agency(db, country="CO")
    b_admin = await make_actor(client, db, hashing, b, Role.agency_admin)
    group = await client.post(
        "/api/v1/sharing-groups", json={"name": "B's desk"}, headers=b_admin.headers
    )
    assert group.status_code == 201, group.text
    return World(
        operator=operator,
        staff=await make_actor(client, db, hashing, operator, Role.platform_admin),
        b=b,
        b_admin=b_admin,
        b_focal=await make_actor(client, db, hashing, b, Role.focal_point),
        group_id=group.json()["id"],
    )


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.session() as session:
        return len((await session.exec(select(model).where(*where))).all())  # type: ignore[call-overload]


# --- the five routes of the report, over the API ----------------------------------------


async def test_operator_cannot_join_another_agencys_group(client, db, world: World):
    url = f"/api/v1/sharing-groups/{world.group_id}/members/{world.operator.id}"
    as_staff = await client.put(url, headers=world.staff.headers)
    assert as_staff.status_code == 404  # the group is not the operator's to see
    # Not even the group's owner can add the operator's agency.
    as_owner = await client.put(url, headers=world.b_admin.headers)
    assert as_owner.status_code == 422, as_owner.text
    assert as_owner.json()["errors"][0]["field"] == "path.agency_id"
    made = await client.post(
        "/api/v1/sharing-groups",
        json={"name": "With the operator", "members": [str(world.operator.id)]},
        headers=world.b_admin.headers,
    )
    assert made.status_code == 422 and made.json()["errors"][0]["field"] == "body.members.0"
    for_b = await client.post(
        "/api/v1/sharing-groups",
        json={"name": "Made for B", "owner_agency_id": str(world.b.id)},
        headers=world.staff.headers,
    )
    assert for_b.status_code == 403
    own = await client.post(
        "/api/v1/sharing-groups", json={"name": "Operator's own"}, headers=world.staff.headers
    )
    assert own.status_code == 422  # its owner would be a member
    assert (
        await _count(db, SharingGroupMember, SharingGroupMember.agency_id == world.operator.id) == 0
    )
    seen = await client.get(f"/api/v1/sharing-groups/{world.group_id}", headers=world.staff.headers)
    assert seen.status_code == 404


async def test_operator_cannot_create_a_user_in_another_agency(client, db, world: World):
    body = {
        "email": random_email("mole"),
        "full_name": "Mole",
        "role": "agency_admin",
        "password": PASSWORD,
    }
    answer = await client.post(
        f"/api/v1/agencies/{world.b.id}/users", json=body, headers=world.staff.headers
    )
    assert answer.status_code == 403, answer.text
    assert await _count(db, User, User.email == body["email"]) == 0


async def test_operator_cannot_set_a_password_in_another_agency(client, world: World):
    # Nobody sets another's password through the admin PATCH any more (the field is gone),
    # and the operator may not issue another agency's user a reset link either.
    answer = await client.patch(
        f"/api/v1/users/{world.b_focal.user.id}",
        json={"password": "the operator chose this one"},
        headers=world.staff.headers,
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["body.password"]
    reset = await client.post(
        f"/api/v1/users/{world.b_focal.user.id}/password-reset", headers=world.staff.headers
    )
    assert reset.status_code == 403
    assert "token" not in reset.json()
    refused = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": world.b_focal.user.email,
            "password": "the operator chose this one",
        },
    )
    assert refused.status_code == 400
    await password_login(client, world.b_focal.user.email)  # the focal point's own still works
    for body in ({"role": "reader"}, {"is_active": False}):
        changed = await client.patch(
            f"/api/v1/users/{world.b_focal.user.id}", json=body, headers=world.staff.headers
        )
        assert changed.status_code == 403
    deleted = await client.delete(
        f"/api/v1/users/{world.b_focal.user.id}", headers=world.staff.headers
    )
    assert deleted.status_code == 403


async def test_operator_cannot_create_or_touch_another_agencys_clients(client, db, world: World):
    answer = await client.post(
        f"/api/v1/agencies/{world.b.id}/clients",
        json={"name": "Operator's tap", "scopes": ["alerts:read"]},
        headers=world.staff.headers,
    )
    assert answer.status_code == 403
    assert await _count(db, ApiClient, ApiClient.agency_id == world.b.id) == 0
    made = await client.post(
        f"/api/v1/agencies/{world.b.id}/clients",
        json={"name": "B's own"},
        headers=world.b_admin.headers,
    )
    assert made.status_code == 201
    remember(made.json()["client_secret"])
    client_id = made.json()["id"]
    rotated = await client.post(
        f"/api/v1/clients/{client_id}/rotate-secret", headers=world.staff.headers
    )
    assert rotated.status_code == 403
    revoked = await client.delete(f"/api/v1/clients/{client_id}", headers=world.staff.headers)
    assert revoked.status_code == 403


async def test_operator_cannot_set_another_agencys_policy(client, db, world: World):
    policy = {
        "kinds": {
            "seized_weapon": {
                "default": {
                    "tlp": "amber",
                    "audience": "recipients",
                    "recipient_agencies": [str(world.operator.id)],
                }
            }
        }
    }
    url = f"/api/v1/agencies/{world.b.id}/sharing-policy"
    answer = await client.put(url, json=policy, headers=world.staff.headers)
    assert answer.status_code == 403
    assert await _count(db, SharingPolicy, SharingPolicy.agency_id == world.b.id) == 0
    assert (await client.get(url, headers=world.staff.headers)).status_code == 404
    # Nor may B's own admin make the operator a default recipient.
    own = await client.put(url, json=policy, headers=world.b_admin.headers)
    assert own.status_code == 422
    assert own.json()["errors"][0]["field"] == (
        "body.kinds.seized_weapon.default.recipient_agencies.0"
    )


async def test_operator_agency_is_never_a_recipient_or_addressee(client, world: World):
    named = seizure_body(
        handling={
            "tlp": "amber",
            "audience": "recipients",
            "recipient_agencies": [str(world.operator.id)],
        }
    )
    answer = await client.post("/api/v1/alerts", json=named, headers=world.b_focal.headers)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.handling.recipient_agencies.0"
    trace = trace_body(world.operator)
    answer = await client.post("/api/v1/alerts", json=trace, headers=world.b_focal.headers)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.details.addressed_to"
    # A draft cannot be re-addressed to it either.
    draft = await post_alert(client, world.b_focal, seizure_body(), publish=False)
    patched = await client.patch(
        f"/api/v1/alerts/{draft['id']}",
        json={"handling": named["handling"]},
        headers={**world.b_focal.headers, "If-Match": '"1"'},
    )
    assert patched.status_code == 422


# --- the same doors in the console ------------------------------------------------------


async def test_console_refuses_the_operator_in_another_agency(client, db, world: World):
    csrf = await console_login(client, world.staff.user.email)
    users_page = await client.get(f"/console/admin/users?agency={world.b.id}")
    assert users_page.status_code == 200  # it may see who they are
    assert 'action="/console/admin/users"' not in users_page.text  # but no form to add one
    email = random_email("mole")
    made = await client.post(
        "/console/admin/users",
        data={
            "csrf_token": csrf,
            "agency": str(world.b.id),
            "email": email,
            "full_name": "Mole",
            "role": "agency_admin",
            "password": PASSWORD,
        },
    )
    assert made.status_code == 403
    assert await _count(db, User, User.email == email) == 0
    off = await client.post(
        f"/console/admin/users/{world.b_focal.user.id}/deactivate", data={"csrf_token": csrf}
    )
    assert off.status_code == 403
    joined = await client.post(
        f"/console/admin/groups/{world.group_id}/members",
        data={"csrf_token": csrf, "agency_id": str(world.operator.id)},
    )
    assert joined.status_code == 404
    group = await client.post(
        "/console/admin/groups", data={"csrf_token": csrf, "name": "Operator's own"}
    )
    assert group.status_code == 422
    assert (
        await _count(db, SharingGroupMember, SharingGroupMember.agency_id == world.operator.id) == 0
    )
    await password_login(client, world.b_focal.user.email)  # still active


# --- B's own trail ------------------------------------------------------------------------


async def test_what_the_operator_does_to_an_agency_is_in_its_trail(client, world: World):
    staff = world.staff.headers
    for status in ("suspended", "active"):
        answer = await client.patch(
            f"/api/v1/agencies/{world.b.id}", json={"status": status}, headers=staff
        )
        assert answer.status_code == 200
    assert (
        await client.get(f"/api/v1/agencies/{world.b.id}/users", headers=staff)
    ).status_code == 200
    trail = await client.get("/api/v1/audit?limit=100", headers=world.b_admin.headers)
    assert trail.status_code == 200, trail.text
    mine = [r for r in trail.json()["items"] if r["actor_id"] == str(world.staff.user.id)]
    assert [(r["action"], r["agency_id"]) for r in mine] == [
        ("user.list", str(world.b.id)),
        ("agency.update", str(world.b.id)),
        ("agency.update", str(world.b.id)),
    ]
    assert [r["details"].get("status") for r in mine[1:]] == ["active", "suspended"]
    # The operator's own trail has them as well.
    everything = await client.get(
        f"/api/v1/audit?agency={world.operator.id}&limit=100", headers=staff
    )
    assert {r["action"] for r in everything.json()["items"]} >= {"agency.update", "user.list"}


# --- the invitation of an agency's first administrator -----------------------------------


async def _invite(client, staff: Actor, agency_id: str, email: str) -> httpx.Response:
    answer = await client.post(
        f"/api/v1/agencies/{agency_id}/invitation",
        json={"email": email, "full_name": "First Admin"},
        headers=staff.headers,
    )
    if answer.status_code == 201:
        remember(answer.json()["token"])
    return answer


async def test_invitation_end_to_end_over_the_api(client, db, world: World):
    staff = world.staff
    made = await client.post(
        "/api/v1/agencies",
        json={"name": f"Ghana Police {uuid.uuid4().hex[:6]}", "country": "GH", "type": "police"},
        headers=staff.headers,
    )
    assert made.status_code == 201
    agency_id = made.json()["id"]
    assert made.json()["is_operator"] is False
    email = random_email("first")
    invited = await _invite(client, staff, agency_id, email)
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert invited.headers["cache-control"] == "no-store"
    assert body["user"]["role"] == "agency_admin" and body["user"]["email"] == email
    assert body["token"].startswith("twi_") and body["token"] not in body["set_password_url"]
    async with db.session() as session:
        stored = (await session.exec(select(SetPasswordToken))).all()
    assert all(body["token"] not in row.token_hash for row in stored)
    # Before the invitee sets a password, nothing lets anyone in.
    for password in ("x", PASSWORD):
        refused = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        assert refused.status_code == 400
    short = await client.post(
        "/api/v1/auth/set-password", json={"token": body["token"], "password": "short"}
    )
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "body.password"
    chosen = "the invitee chose this passphrase"
    remember(chosen)
    done = await client.post(
        "/api/v1/auth/set-password", json={"token": body["token"], "password": chosen}
    )
    assert done.status_code == 204, done.text
    again = await client.post(
        "/api/v1/auth/set-password",
        json={"token": body["token"], "password": "and once more again"},
    )
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "body.token"
    tokens = await password_login(client, email, chosen)
    admin = {"Authorization": f"Bearer {tokens['access_token']}"}
    # The new administrator manages its agency; the operator may not invite another.
    user = await client.post(
        f"/api/v1/agencies/{agency_id}/users",
        json={"email": random_email(), "full_name": "Reader", "password": PASSWORD},
        headers=admin,
    )
    assert user.status_code == 201
    second = await _invite(client, staff, agency_id, random_email("second"))
    assert second.status_code == 409
    trail = await client.get("/api/v1/audit?limit=100", headers=admin)
    actions = [r["action"] for r in trail.json()["items"]]
    assert {"agency.create", "user.invite", "user.set_password"} <= set(actions)


async def test_invitation_rules(client, db, world: World):
    staff = world.staff
    # Only the operator invites, only into an agency that never had a user.
    assert (
        await _invite(client, world.b_admin, str(world.b.id), random_email())
    ).status_code == 403
    assert (await _invite(client, staff, str(world.b.id), random_email())).status_code == 409
    assert (await _invite(client, staff, str(world.operator.id), random_email())).status_code == 409
    fresh = await make_agency(db, country="GH")
    first = await _invite(client, staff, str(fresh.id), random_email("one"))
    assert first.status_code == 201
    # A new invitation replaces the unused one.
    replaced = await _invite(client, staff, str(fresh.id), random_email("two"))
    assert replaced.status_code == 201
    assert replaced.json()["user"]["id"] == first.json()["user"]["id"]
    stale = await client.post(
        "/api/v1/auth/set-password",
        json={"token": first.json()["token"], "password": "a perfectly fine passphrase"},
    )
    assert stale.status_code == 422
    # An expired one is refused.
    async with db.session() as session:
        row = (
            await session.exec(
                select(SetPasswordToken)
                .where(col(SetPasswordToken.revoked_at).is_(None))
                .where(SetPasswordToken.user_id == uuid.UUID(replaced.json()["user"]["id"]))
            )
        ).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
        await session.commit()
    expired = await client.post(
        "/api/v1/auth/set-password",
        json={"token": replaced.json()["token"], "password": "a perfectly fine passphrase"},
    )
    assert expired.status_code == 422
    unknown = await client.post(
        "/api/v1/auth/set-password",
        json={"token": "twi_nothing", "password": "whatever it is long"},
    )
    assert unknown.status_code == 422


async def test_invitation_end_to_end_in_the_console(client, app, db, world: World):
    fresh = await make_agency(db, country="GH", name=f"Ghana Customs {uuid.uuid4().hex[:6]}")
    operator_browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    )
    invitee = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    )
    async with operator_browser, invitee:
        csrf = await console_login(operator_browser, world.staff.user.email)
        page = await operator_browser.get("/console/platform/agencies")
        assert f'value="{fresh.id}"' in page.text
        assert f'value="{world.operator.id}"' not in page.text  # its own is not offered
        email = random_email("console")
        shown = await operator_browser.post(
            "/console/platform/invitations",
            data={
                "csrf_token": csrf,
                "agency_id": str(fresh.id),
                "email": email,
                "full_name": "Ama",
            },
        )
        assert shown.status_code == 200, shown.text
        assert shown.headers["cache-control"] == "no-store"
        token = shown.text.split('id="invitation-token">')[1].split("<")[0]
        remember(token)
        assert token.startswith("twi_")
        again = await operator_browser.post(
            "/console/platform/invitations",
            data={
                "csrf_token": csrf,
                "agency_id": str(world.b.id),
                "email": random_email(),
                "full_name": "X",
            },
        )
        assert again.status_code == 409
        form = await invitee.get("/console/set-password")
        assert form.status_code == 200 and 'name="token"' in form.text
        chosen = "chosen in the console"
        remember(chosen)
        differ = await invitee.post(
            "/console/set-password",
            data={"token": token, "password": chosen, "password_again": chosen + "!"},
        )
        assert differ.status_code == 422 and 'id="f-password_again-error"' in differ.text
        done = await invitee.post(
            "/console/set-password",
            data={"token": token, "password": chosen, "password_again": chosen},
        )
        assert done.status_code == 200 and "Your password is set" in done.text
        reused = await invitee.post(
            "/console/set-password",
            data={"token": token, "password": chosen, "password_again": chosen},
        )
        assert reused.status_code == 422 and 'id="f-token-error"' in reused.text
        csrf = await console_login(invitee, email, chosen)
        users = await invitee.get("/console/admin/users")
        assert users.status_code == 200 and 'action="/console/admin/users"' in users.text
        assert csrf_of(users.text) == csrf


# --- the operator tools keep working ----------------------------------------------------


async def test_create_admin_flags_the_operator_agency(client, settings):
    from app.seed.bootstrap import create_platform_admin

    email = random_email("ops")
    assert await create_platform_admin(settings, email, PASSWORD, "Ops") is True
    tokens = await password_login(client, email)
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["role"] == "platform_admin" and me.json()["agency"]["is_operator"] is True
    assert "alerts:read:red" not in me.json()["scopes"]


async def test_an_agencys_contact_address_is_its_own(client, world):
    """Counterparts are sent to an agency's contact (hits, checks): the operator cannot
    re-route it; the agency's administrators set it, and only it."""
    path = f"/api/v1/agencies/{world.b.id}"
    taken = await client.patch(
        path, json={"contact_email": "desk@operator.example"}, headers=world.staff.headers
    )
    assert taken.status_code == 403, taken.text
    own = await client.patch(
        path, json={"contact_email": "desk@b.example"}, headers=world.b_admin.headers
    )
    assert own.status_code == 200, own.text
    assert own.json()["contact_email"] == "desk@b.example"
    for field, value in (("status", "suspended"), ("country", "KE"), ("name", "Renamed")):
        refused = await client.patch(path, json={field: value}, headers=world.b_admin.headers)
        assert refused.status_code == 403, (field, refused.text)
    refused = await client.patch(
        path, json={"contact_email": "x@b.example"}, headers=world.b_focal.headers
    )
    assert refused.status_code == 403
    suspended = await client.patch(path, json={"status": "suspended"}, headers=world.staff.headers)
    assert suspended.status_code == 200
    current = await client.get(path, headers=world.staff.headers)
    assert current.json()["contact_email"] == "desk@b.example"


async def test_another_agencys_user_or_client_id_is_answered_as_an_unknown_one(
    client, db, app, world: World
):
    """An agency admin probing ids learns nothing: another agency's user or client gets
    the same 404 as an id that does not exist."""
    other = await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db, country="KE"), Role.agency_admin
    )
    api_client, _ = await make_client(db, world.b)
    calls = {
        "user": [
            ("GET", "/api/v1/users/{}", None),
            ("PATCH", "/api/v1/users/{}", {"full_name": "X"}),
            ("DELETE", "/api/v1/users/{}", None),
        ],
        "client": [
            ("POST", "/api/v1/clients/{}/rotate-secret", None),
            ("DELETE", "/api/v1/clients/{}", None),
        ],
    }
    real = {"user": world.b_focal.user.id, "client": api_client.id}
    for kind, routes in calls.items():
        for method, path, body in routes:
            answers = []
            for target in (real[kind], uuid.uuid4()):
                answer = await client.request(
                    method, path.format(target), json=body, headers=other.headers
                )
                answers.append((answer.status_code, answer.json()["detail"]))
            assert answers[0] == answers[1], (method, path, answers)
            assert answers[0][0] == 404
