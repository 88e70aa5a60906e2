"""Every admin endpoint x every kind of principal: the right status, every time.

platform_admin manages the set of agencies and may list any agency's users and clients,
but changes no other agency's users or clients (403, DESIGN §2: separation of duties);
agency_admin manages only its own (another agency is 404); reader, focal_point and API
clients manage nothing (403).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.agencies.models import Agency, ApiClient, User
from app.authz.principal import Role
from app.core.db import Database
from tests.conftest import random_email
from tests.factories import (
    PASSWORD,
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
)

ACTORS = [
    "platform_admin",
    "own_admin",
    "other_admin",
    "own_focal_point",
    "own_reader",
    "own_client",
]


@dataclass
class World:
    target: Agency
    target_user: User
    target_client: ApiClient
    headers: dict[str, dict[str, str]]


@pytest.fixture
async def world(client, db, app) -> World:
    hashing = app.state.auth.hashing
    operator = await make_agency(db, country="XX")
    target = await make_agency(db, country="CO")
    other = await make_agency(db, country="DE")
    users = {
        "platform_admin": await make_user(db, hashing, operator, Role.platform_admin),
        "own_admin": await make_user(db, hashing, target, Role.agency_admin),
        "other_admin": await make_user(db, hashing, other, Role.agency_admin),
        "own_focal_point": await make_user(db, hashing, target, Role.focal_point),
        "own_reader": await make_user(db, hashing, target, Role.reader),
    }
    headers = {
        name: bearer((await password_login(client, user.email))["access_token"])
        for name, user in users.items()
    }
    api_client, secret = await make_client(
        db, target, "alerts:read alerts:write traces:write webhooks:manage"
    )
    headers["own_client"] = bearer(
        (await client_login(client, api_client.id, secret))["access_token"]
    )
    target_user = await make_user(db, hashing, target, Role.focal_point)
    target_client, _ = await make_client(db, target)
    return World(target, target_user, target_client, headers)


MANAGE = {
    "platform_admin": 403,
    "own_admin": "ok",
    "other_admin": 404,
    "own_focal_point": 403,
    "own_reader": 403,
    "own_client": 403,
}
OVERSEE = MANAGE | {"platform_admin": "ok"}
PLATFORM_ONLY = {actor: ("ok" if actor == "platform_admin" else 403) for actor in ACTORS}
EVERYONE = dict.fromkeys(ACTORS, "ok")


def _request(name: str, w: World) -> tuple[str, str, dict | None, int]:
    """(method, path, json body, success status) for endpoint `name`."""
    a, u, c = w.target.id, w.target_user.id, w.target_client.id
    new_user = {
        "email": random_email(),
        "full_name": "New Person",
        "role": "reader",
        "password": PASSWORD,
    }
    table = {
        "me": ("GET", "/api/v1/me", None, 200),
        "list_agencies": ("GET", "/api/v1/agencies", None, 200),
        "get_agency": ("GET", f"/api/v1/agencies/{a}", None, 200),
        "create_agency": (
            "POST",
            "/api/v1/agencies",
            {"name": f"New agency {random_email()}", "country": "FR", "type": "customs"},
            201,
        ),
        "update_agency": ("PATCH", f"/api/v1/agencies/{a}", {"is_focal_point": True}, 200),
        "create_user": ("POST", f"/api/v1/agencies/{a}/users", new_user, 201),
        "list_users": ("GET", f"/api/v1/agencies/{a}/users", None, 200),
        "get_user": ("GET", f"/api/v1/users/{u}", None, 200),
        "update_user": ("PATCH", f"/api/v1/users/{u}", {"full_name": "Renamed"}, 200),
        "delete_user": ("DELETE", f"/api/v1/users/{u}", None, 204),
        "create_client": ("POST", f"/api/v1/agencies/{a}/clients", {"name": "Partner"}, 201),
        "list_clients": ("GET", f"/api/v1/agencies/{a}/clients", None, 200),
        "rotate_client": ("POST", f"/api/v1/clients/{c}/rotate-secret", None, 200),
        "delete_client": ("DELETE", f"/api/v1/clients/{c}", None, 204),
    }
    return table[name]


EXPECTED = {
    "me": EVERYONE,
    "list_agencies": EVERYONE,
    "get_agency": EVERYONE,
    "create_agency": PLATFORM_ONLY,
    # The register fields (the body changes is_focal_point) are the operator's; an agency
    # admin may change only its own contact address, and learns nothing of another agency.
    "update_agency": PLATFORM_ONLY | {"other_admin": 404},
    "create_user": MANAGE,
    "list_users": OVERSEE,
    "get_user": OVERSEE,
    "update_user": MANAGE,
    "delete_user": MANAGE,
    "create_client": MANAGE,
    "list_clients": OVERSEE,
    "rotate_client": MANAGE,
    "delete_client": MANAGE,
}
CASES = [(endpoint, actor) for endpoint in EXPECTED for actor in ACTORS]


@pytest.mark.parametrize(("endpoint", "actor"), CASES, ids=[f"{e}-{a}" for e, a in CASES])
async def test_permission_matrix(client, world: World, endpoint: str, actor: str) -> None:
    method, path, body, success = _request(endpoint, world)
    expected = EXPECTED[endpoint][actor]
    expected = success if expected == "ok" else expected
    answer = await client.request(method, path, json=body, headers=world.headers[actor])
    assert answer.status_code == expected, answer.text
    if expected >= 400:
        assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("via", ["create", "update"])
async def test_agency_admin_cannot_grant_platform_admin(client, world: World, via: str) -> None:
    headers = world.headers["own_admin"]
    if via == "create":
        body = {
            "email": random_email(),
            "full_name": "Sneaky",
            "role": "platform_admin",
            "password": PASSWORD,
        }
        answer = await client.post(
            f"/api/v1/agencies/{world.target.id}/users", json=body, headers=headers
        )
    else:
        answer = await client.patch(
            f"/api/v1/users/{world.target_user.id}",
            json={"role": "platform_admin"},
            headers=headers,
        )
    assert answer.status_code == 403
    check = await client.get(f"/api/v1/users/{world.target_user.id}", headers=headers)
    assert check.json()["role"] == "focal_point"


async def test_platform_admin_grants_platform_admin_in_its_own_agency_only(
    client, db, app, world: World
) -> None:
    headers = world.headers["platform_admin"]
    me = (await client.get("/api/v1/me", headers=headers)).json()
    operator = await db_agency(db, me["agency"]["id"])
    colleague = await make_user(db, app.state.auth.hashing, operator, Role.reader)
    answer = await client.patch(
        f"/api/v1/users/{colleague.id}", json={"role": "platform_admin"}, headers=headers
    )
    assert answer.status_code == 200
    assert answer.json()["role"] == "platform_admin"
    elsewhere = await client.patch(
        f"/api/v1/users/{world.target_user.id}", json={"role": "platform_admin"}, headers=headers
    )
    assert elsewhere.status_code == 403


async def test_agency_admin_cannot_touch_a_platform_admin_of_its_agency(client, db, app) -> None:
    hashing = app.state.auth.hashing
    operator = await make_agency(db, country="XX")
    staff = await make_user(db, hashing, operator, Role.platform_admin)
    local_admin = await make_user(db, hashing, operator, Role.agency_admin)
    headers = bearer((await password_login(client, local_admin.email))["access_token"])
    for method, body in (("PATCH", {"role": "reader"}), ("DELETE", None)):
        answer = await client.request(
            method, f"/api/v1/users/{staff.id}", json=body, headers=headers
        )
        assert answer.status_code == 403


async def db_agency(db: Database, agency_id: str) -> Agency:
    """An agency row by id."""
    async with db.session() as session:
        agency = await session.get(Agency, uuid.UUID(agency_id))
    assert agency is not None
    return agency
