"""A personal access token never does more than its scopes.

The danger is the role: an agency administrator's token with only `alerts:read` must not
manage users, clients, the agency, sharing groups or policy, subscriptions, the audit
trail or tokens; an operator's must not run the platform. Each endpoint is tried with the
same user's login first (the control: it succeeds), then with the token (403).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.agencies.models import Agency, ApiClient, User
from app.authz.principal import Role
from tests.conftest import random_email
from tests.factories import (
    PASSWORD,
    bearer,
    make_agency,
    make_client,
    make_user,
    password_login,
)
from tests.secrets_seen import remember

TOKENS = "/api/v1/me/tokens"


@dataclass
class Stage:
    own: Agency
    other: Agency
    third: Agency
    target_user: User
    target_client: ApiClient
    group_id: str
    sub_id: str
    login: dict[str, dict[str, str]]
    token: dict[str, dict[str, str]]


async def _pat(client, headers: dict[str, str], scopes: list[str]) -> dict[str, str]:
    answer = await client.post(
        TOKENS, json={"name": "read only", "scopes": scopes, "expires_in_days": 30}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    remember(answer.json()["token"])
    return bearer(answer.json()["token"])


@pytest.fixture
async def stage(client, db, app) -> Stage:
    hashing = app.state.auth.hashing
    operator = await make_agency(db, country="XX")
    own = await make_agency(db, country="KE")
    other = await make_agency(db, country="DE")
    third = await make_agency(db, country="JO")
    people = {
        "admin": await make_user(db, hashing, own, Role.agency_admin),
        "operator": await make_user(db, hashing, operator, Role.platform_admin),
    }
    login = {
        name: bearer((await password_login(client, user.email))["access_token"])
        for name, user in people.items()
    }
    token = {name: await _pat(client, headers, ["alerts:read"]) for name, headers in login.items()}
    group = await client.post(
        "/api/v1/sharing-groups",
        json={"name": "East Africa", "members": [str(other.id)]},
        headers=login["admin"],
    )
    assert group.status_code == 201, group.text
    sub = await client.post(
        "/api/v1/subscriptions", json={"url": "https://example.org/hook"}, headers=login["admin"]
    )
    assert sub.status_code == 201, sub.text
    remember(sub.json()["secret"])
    target_user = await make_user(db, hashing, own, Role.focal_point)
    target_client, _ = await make_client(db, own)
    return Stage(
        own,
        other,
        third,
        target_user,
        target_client,
        group.json()["id"],
        sub.json()["id"],
        login,
        token,
    )


def _admin_calls(s: Stage) -> dict[str, tuple[str, str, dict | None]]:
    a, u, c, g, sub = s.own.id, s.target_user.id, s.target_client.id, s.group_id, s.sub_id
    new_user = {"email": random_email(), "full_name": "New", "role": "reader", "password": PASSWORD}
    return {
        "create user": ("POST", f"/api/v1/agencies/{a}/users", new_user),
        "list users": ("GET", f"/api/v1/agencies/{a}/users", None),
        "read user": ("GET", f"/api/v1/users/{u}", None),
        "update user": ("PATCH", f"/api/v1/users/{u}", {"full_name": "Renamed"}),
        "promote user": ("PATCH", f"/api/v1/users/{u}", {"role": "agency_admin"}),
        "reset password": ("POST", f"/api/v1/users/{u}/password-reset", None),
        "reset second factor": ("POST", f"/api/v1/users/{u}/mfa-reset", None),
        "require second factor": ("PUT", f"/api/v1/agencies/{a}/mfa-policy", {"require_mfa": True}),
        "delete user": ("DELETE", f"/api/v1/users/{u}", None),
        "create client": ("POST", f"/api/v1/agencies/{a}/clients", {"name": "Partner"}),
        "list clients": ("GET", f"/api/v1/agencies/{a}/clients", None),
        "rotate client": ("POST", f"/api/v1/clients/{c}/rotate-secret", None),
        "delete client": ("DELETE", f"/api/v1/clients/{c}", None),
        "update agency": ("PATCH", f"/api/v1/agencies/{a}", {"contact_email": random_email()}),
        "create group": ("POST", "/api/v1/sharing-groups", {"name": "Another group"}),
        "update group": ("PATCH", f"/api/v1/sharing-groups/{g}", {"name": "Renamed"}),
        "add member": ("PUT", f"/api/v1/sharing-groups/{g}/members/{s.third.id}", None),
        "remove member": ("DELETE", f"/api/v1/sharing-groups/{g}/members/{s.other.id}", None),
        "delete group": ("DELETE", f"/api/v1/sharing-groups/{g}", None),
        "set policy": ("PUT", f"/api/v1/agencies/{a}/sharing-policy", {"kinds": {}}),
        "create subscription": ("POST", "/api/v1/subscriptions", {"url": "https://example.org/x"}),
        "list subscriptions": ("GET", "/api/v1/subscriptions", None),
        "read subscription": ("GET", f"/api/v1/subscriptions/{sub}", None),
        "update subscription": ("PATCH", f"/api/v1/subscriptions/{sub}", {"description": "x"}),
        "rotate subscription": ("POST", f"/api/v1/subscriptions/{sub}/rotate-secret", None),
        "subscription deliveries": ("GET", f"/api/v1/subscriptions/{sub}/deliveries", None),
        "delete subscription": ("DELETE", f"/api/v1/subscriptions/{sub}", None),
        "read audit": ("GET", "/api/v1/audit", None),
        "create token": (
            "POST",
            TOKENS,
            {"name": "t", "scopes": ["alerts:read"], "expires_in_days": 1},
        ),
        "list tokens": ("GET", TOKENS, None),
    }


def _operator_calls(s: Stage) -> dict[str, tuple[str, str, dict | None]]:
    return {
        "register agency": (
            "POST",
            "/api/v1/agencies",
            {"name": f"Agency {uuid.uuid4().hex[:6]}", "country": "FR", "type": "customs"},
        ),
        "suspend agency": ("PATCH", f"/api/v1/agencies/{s.other.id}", {"status": "suspended"}),
        "invite first admin": (
            "POST",
            f"/api/v1/agencies/{s.third.id}/invitation",
            {"email": random_email(), "full_name": "First Admin"},
        ),
        "oversee users": ("GET", f"/api/v1/agencies/{s.own.id}/users", None),
        "oversee clients": ("GET", f"/api/v1/agencies/{s.own.id}/clients", None),
        "read all audit": ("GET", "/api/v1/audit", None),
        "verify audit": ("GET", "/api/v1/audit/verify", None),
    }


ADMIN_NAMES = [
    "create user",
    "list users",
    "read user",
    "update user",
    "promote user",
    "reset password",
    "reset second factor",
    "require second factor",
    "delete user",
    "create client",
    "list clients",
    "rotate client",
    "delete client",
    "update agency",
    "create group",
    "update group",
    "add member",
    "remove member",
    "delete group",
    "set policy",
    "create subscription",
    "list subscriptions",
    "read subscription",
    "update subscription",
    "rotate subscription",
    "subscription deliveries",
    "delete subscription",
    "read audit",
    "create token",
    "list tokens",
]
OPERATOR_NAMES = [
    "register agency",
    "suspend agency",
    "invite first admin",
    "oversee users",
    "oversee clients",
    "read all audit",
    "verify audit",
]
CASES = [("admin", name) for name in ADMIN_NAMES] + [("operator", n) for n in OPERATOR_NAMES]


@pytest.mark.parametrize(("who", "call"), CASES, ids=[f"{w}-{c}" for w, c in CASES])
@pytest.mark.parametrize("via", ["login", "token"])
async def test_a_read_only_token_of_an_administrator_administers_nothing(
    client, stage: Stage, who: str, call: str, via: str
) -> None:
    calls = _admin_calls(stage) if who == "admin" else _operator_calls(stage)
    assert set(calls) == set(ADMIN_NAMES if who == "admin" else OPERATOR_NAMES)
    method, path, body = calls[call]
    headers = stage.login[who] if via == "login" else stage.token[who]
    answer = await client.request(method, path, json=body, headers=headers)
    if via == "login":  # the control: the user itself may, so a 403 below is the token's
        assert answer.status_code < 300, answer.text
        for key in ("token", "client_secret", "secret"):
            remember(answer.json().get(key) if answer.content else None)
        return
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
