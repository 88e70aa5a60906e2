"""A user's lifecycle: a role change ends their sessions; passwords come from the user
(a reset link issued by an administrator, or their own change), never from an admin."""

from __future__ import annotations

import dataclasses
import html
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from app.agencies.models import SetPasswordToken, User
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.db import Database
from app.core.types import utcnow
from tests.console.helpers import console_login
from tests.factories import (
    PASSWORD,
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
)
from tests.secrets_seen import remember

TOKEN = "/api/v1/auth/token"
SET_PASSWORD = "/api/v1/auth/set-password"
NEW_PASSWORD = "a passphrase the user chose"


@dataclass
class Cast:
    """Agency A (its admin, a focal point, a reader, an API client), agency B's admin and
    the operator's platform admin; each caller's headers by name."""

    admin: User
    user: User
    headers: dict[str, dict[str, str]]


@pytest.fixture
async def cast(client: httpx.AsyncClient, db: Database, app: object) -> Cast:
    hashing = app.state.auth.hashing  # type: ignore[attr-defined]
    a, b = await make_agency(db), await make_agency(db, country="DE")
    operator = await make_agency(db, country="XX")
    admin = await make_user(db, hashing, a, Role.agency_admin)
    user = await make_user(db, hashing, a, Role.focal_point)
    callers = {
        "a_admin": admin,
        "a_reader": await make_user(db, hashing, a, Role.reader),
        "b_admin": await make_user(db, hashing, b, Role.agency_admin),
        "platform_admin": await make_user(db, hashing, operator, Role.platform_admin),
    }
    headers = {
        name: bearer((await password_login(client, u.email))["access_token"])
        for name, u in callers.items()
    }
    api_client, secret = await make_client(db, a, "alerts:read webhooks:manage")
    headers["a_client"] = bearer(
        (await client_login(client, api_client.id, secret))["access_token"]
    )
    return Cast(admin=admin, user=user, headers=headers)


async def _row(db: Database, user_id: uuid.UUID) -> User:
    async with db.session() as session:
        found = await session.get(User, user_id)
    assert found is not None
    return found


async def _audit(db: Database, action: str) -> list[AuditRecord]:
    async with db.session() as session:
        rows = await session.exec(select(AuditRecord).where(AuditRecord.action == action))
        return list(rows.all())


async def _links(db: Database, user_id: uuid.UUID) -> list[SetPasswordToken]:
    async with db.session() as session:
        query = select(SetPasswordToken).where(SetPasswordToken.user_id == user_id)
        return list((await session.exec(query)).all())


async def _assert_everything_ended(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, tokens: dict
) -> None:
    """The access token, the refresh token and the console session all stopped."""
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    refreshed = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    page = await browser.get("/console/")
    assert page.status_code == 303 and page.headers["location"].startswith("/console/login")


def _browser(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# --- a role change ends every session -----------------------------------------------------


@pytest.mark.parametrize("role", ["reader", "agency_admin"])
async def test_a_role_change_ends_tokens_refresh_and_console(client, app, db, cast, role):
    tokens = await password_login(client, cast.user.email)
    async with _browser(app) as browser:
        await console_login(browser, cast.user.email)
        changed = await client.patch(
            f"/api/v1/users/{cast.user.id}", json={"role": role}, headers=cast.headers["a_admin"]
        )
        assert changed.status_code == 200 and changed.json()["role"] == role
        await _assert_everything_ended(client, browser, tokens)
    # A new login carries the new role; the admin who made the change is untouched.
    fresh = await password_login(client, cast.user.email)
    me = await client.get("/api/v1/me", headers=bearer(fresh["access_token"]))
    assert me.status_code == 200 and me.json()["role"] == role
    assert (await client.get("/api/v1/me", headers=cast.headers["a_admin"])).status_code == 200
    [record] = await _audit(db, "user.update")
    assert record.details == {"fields": ["role"], "role": role}


@pytest.mark.parametrize("body", [{"full_name": "Renamed"}, {"role": "focal_point"}])
async def test_a_change_that_keeps_the_role_keeps_the_sessions(client, db, cast, body):
    tokens = await password_login(client, cast.user.email)
    changed = await client.patch(
        f"/api/v1/users/{cast.user.id}", json=body, headers=cast.headers["a_admin"]
    )
    assert changed.status_code == 200
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert (await _row(db, cast.user.id)).token_epoch == 0


async def test_a_refused_role_change_ends_nothing(client, db, cast):
    tokens = await password_login(client, cast.user.email)
    for caller, status in (("b_admin", 404), ("platform_admin", 403), ("a_reader", 403)):
        answer = await client.patch(
            f"/api/v1/users/{cast.user.id}", json={"role": "reader"}, headers=cast.headers[caller]
        )
        assert answer.status_code == status, caller
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["role"] == "focal_point"


# --- no password chosen by an administrator ------------------------------------------------


async def test_the_admin_patch_refuses_a_password_naming_the_field(client, db, cast):
    before = await _row(db, cast.user.id)
    answer = await client.patch(
        f"/api/v1/users/{cast.user.id}",
        json={"full_name": "Renamed", "password": "chosen by the admin"},
        headers=cast.headers["a_admin"],
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == ["body.password"]
    assert "chosen by the admin" not in answer.text
    after = await _row(db, cast.user.id)
    assert (after.full_name, after.password_hash) == (before.full_name, before.password_hash)
    await password_login(client, cast.user.email)  # the user's own password still works


async def test_a_reset_link_ends_everything_and_the_user_chooses_the_password(
    client, app, db, cast
):
    tokens = await password_login(client, cast.user.email)
    async with _browser(app) as browser:
        await console_login(browser, cast.user.email)
        reset = await client.post(
            f"/api/v1/users/{cast.user.id}/password-reset", headers=cast.headers["a_admin"]
        )
        assert reset.status_code == 201, reset.text
        assert reset.headers["cache-control"] == "no-store"
        body = reset.json()
        remember(body["token"])
        assert body["user"]["id"] == str(cast.user.id)
        assert body["set_password_url"].endswith("/console/set-password")
        assert body["token"] not in body["set_password_url"]
        await _assert_everything_ended(client, browser, tokens)
    # The old password stops too: a suspected compromise is shut until the user acts.
    old = await client.post(
        TOKEN, data={"grant_type": "password", "username": cast.user.email, "password": PASSWORD}
    )
    assert old.status_code == 400
    epoch = (await _row(db, cast.user.id)).token_epoch
    done = await client.post(SET_PASSWORD, json={"token": body["token"], "password": NEW_PASSWORD})
    assert done.status_code == 204
    assert (await _row(db, cast.user.id)).token_epoch == epoch + 1  # completing ends them again
    fresh = await password_login(client, cast.user.email, NEW_PASSWORD)
    assert (
        await client.get("/api/v1/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200
    # Used once: the same link again is refused and changes nothing.
    again = await client.post(
        SET_PASSWORD, json={"token": body["token"], "password": "someone else's choice"}
    )
    assert again.status_code == 422
    assert [e["field"] for e in again.json()["errors"]] == ["body.token"]
    assert (
        await client.get("/api/v1/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200
    [issued] = await _audit(db, "user.password_reset")
    assert issued.object_id == str(cast.user.id) and issued.actor_id == cast.admin.id
    assert body["token"] not in str(issued.details)
    [used] = await _audit(db, "user.set_password")
    assert used.details == {"purpose": "reset"}


async def test_a_new_reset_link_revokes_the_earlier_one(client, db, cast):
    url = f"/api/v1/users/{cast.user.id}/password-reset"
    first = (await client.post(url, headers=cast.headers["a_admin"])).json()["token"]
    second = (await client.post(url, headers=cast.headers["a_admin"])).json()["token"]
    remember(first, second)
    stale = await client.post(SET_PASSWORD, json={"token": first, "password": NEW_PASSWORD})
    assert stale.status_code == 422
    ok = await client.post(SET_PASSWORD, json={"token": second, "password": NEW_PASSWORD})
    assert ok.status_code == 204
    links = await _links(db, cast.user.id)
    assert sorted((link.purpose, link.revoked_at is None) for link in links) == [
        ("reset", False),
        ("reset", True),
    ]


async def test_an_expired_reset_link_is_refused(client, db, cast):
    reset = await client.post(
        f"/api/v1/users/{cast.user.id}/password-reset", headers=cast.headers["a_admin"]
    )
    token = reset.json()["token"]
    remember(token)
    async with db.session() as session:
        [link] = (
            await session.exec(
                select(SetPasswordToken).where(SetPasswordToken.user_id == cast.user.id)
            )
        ).all()
        link.expires_at = utcnow() - timedelta(seconds=1)
        session.add(link)
        await session.commit()
    late = await client.post(SET_PASSWORD, json={"token": token, "password": NEW_PASSWORD})
    assert late.status_code == 422


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("b_admin", 404),  # another agency's admin learns nothing
        ("platform_admin", 403),  # running the platform gives no right over a user
        ("a_reader", 403),
        ("a_client", 403),
    ],
)
async def test_who_may_not_issue_a_reset_link(client, db, cast, caller, status):
    tokens = await password_login(client, cast.user.email)
    answer = await client.post(
        f"/api/v1/users/{cast.user.id}/password-reset", headers=cast.headers[caller]
    )
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert await _links(db, cast.user.id) == []
    assert (await _row(db, cast.user.id)).token_epoch == 0
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200


async def test_reset_links_for_missing_deactivated_and_platform_users(client, db, app, cast):
    admin = cast.headers["a_admin"]
    missing = await client.post(f"/api/v1/users/{uuid.uuid4()}/password-reset", headers=admin)
    assert missing.status_code == 404
    off = await client.patch(
        f"/api/v1/users/{cast.user.id}", json={"is_active": False}, headers=admin
    )
    assert off.status_code == 200
    refused = await client.post(f"/api/v1/users/{cast.user.id}/password-reset", headers=admin)
    assert refused.status_code == 409
    assert await _links(db, cast.user.id) == []
    # An agency admin cannot touch a platform admin of its (the operator's) agency.
    hashing = app.state.auth.hashing
    operator = await make_agency(db, country="XX")
    staff = await make_user(db, hashing, operator, Role.platform_admin)
    local = await make_user(db, hashing, operator, Role.agency_admin)
    local_headers = bearer((await password_login(client, local.email))["access_token"])
    answer = await client.post(f"/api/v1/users/{staff.id}/password-reset", headers=local_headers)
    assert answer.status_code == 403
    assert await _links(db, staff.id) == []


# --- a user's own password -----------------------------------------------------------------


async def test_own_password_change_ends_every_session(client, app, db, cast):
    tokens = await password_login(client, cast.user.email)
    other = await password_login(client, cast.user.email)
    async with _browser(app) as browser:
        await console_login(browser, cast.user.email)
        remember(NEW_PASSWORD)
        changed = await client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(tokens["access_token"]),
        )
        assert changed.status_code == 204, changed.text
        await _assert_everything_ended(client, browser, other)
    assert (
        await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    old = await client.post(
        TOKEN, data={"grant_type": "password", "username": cast.user.email, "password": PASSWORD}
    )
    assert old.status_code == 400
    await password_login(client, cast.user.email, NEW_PASSWORD)
    [record] = await _audit(db, "user.change_password")
    assert record.outcome == "success" and record.actor_id == cast.user.id


async def test_a_wrong_current_password_counts_toward_the_login_back_off(client, db, app, cast):
    clock = {"now": utcnow()}
    app.state.auth = dataclasses.replace(app.state.auth, clock=lambda: clock["now"])
    tokens = await password_login(client, cast.user.email)
    headers = bearer(tokens["access_token"])
    limit = app.state.settings.login_max_failures

    async def change(current: str):
        body = {"current_password": current, "new_password": NEW_PASSWORD}
        return await client.post("/api/v1/me/password", json=body, headers=headers)

    for _ in range(limit):
        wrong = await change("not my password at all")
        assert wrong.status_code == 422
        assert [e["field"] for e in wrong.json()["errors"]] == ["body.current_password"]
        assert "not my password at all" not in wrong.text
    blocked = await change(PASSWORD)  # even the right one, while the back-off runs
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    login = await client.post(
        TOKEN, data={"grant_type": "password", "username": cast.user.email, "password": PASSWORD}
    )
    assert login.status_code == 429  # the same back-off as the account's logins
    assert (await _row(db, cast.user.id)).password_hash == cast.user.password_hash
    failures = await _audit(db, "user.change_password")
    assert [r.outcome for r in failures] == ["failure"] * limit + ["throttled"]
    clock["now"] += timedelta(seconds=app.state.settings.login_backoff_max_seconds + 1)
    remember(NEW_PASSWORD)
    assert (await change(PASSWORD)).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"current_password": PASSWORD, "new_password": "short"}, "body.new_password"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "body.new_password"),
        ({"new_password": NEW_PASSWORD}, "body.current_password"),
        ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "x": 1}, "body.x"),
    ],
)
async def test_a_bad_password_change_names_the_field_and_changes_nothing(
    client, db, cast, body, field
):
    tokens = await password_login(client, cast.user.email)
    headers = bearer(tokens["access_token"])
    answer = await client.post("/api/v1/me/password", json=body, headers=headers)
    assert answer.status_code == 422
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    assert (await _row(db, cast.user.id)).token_epoch == 0


async def test_an_api_client_has_no_password_to_change(client, cast):
    answer = await client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=cast.headers["a_client"],
    )
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    anonymous = await client.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert anonymous.status_code == 401


# --- the console's users page ----------------------------------------------------------------


async def test_console_reset_shows_the_link_once_and_the_user_completes_it(client, app, db, cast):
    async with _browser(app) as admin, _browser(app) as user:
        csrf = await console_login(admin, cast.admin.email)
        page = await admin.get("/console/admin/users")
        action = f'action="/console/admin/users/{cast.user.id}/password-reset"'
        assert action in page.text
        forged = await admin.post(f"/console/admin/users/{cast.user.id}/password-reset")
        assert forged.status_code == 403 and await _links(db, cast.user.id) == []
        shown = await admin.post(
            f"/console/admin/users/{cast.user.id}/password-reset", data={"csrf_token": csrf}
        )
        assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
        found = re.search(r'id="reset-token">([^<]+)<', shown.text)
        assert found, shown.text
        token = html.unescape(found.group(1))
        remember(token)
        assert token not in (await admin.get("/console/admin/users")).text  # shown once
        form = {"token": token, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
        done = await user.post("/console/set-password", data=form)
        assert done.status_code == 200 and 'id="f-token-error"' not in done.text
        await console_login(user, cast.user.email, NEW_PASSWORD)
        again = await user.post("/console/set-password", data=form)
        assert again.status_code == 422


async def test_console_reset_refused_for_another_agencys_user(client, app, db, cast):
    async with _browser(app) as other:
        b_admin = await _row(db, await _user_id(client, cast.headers["b_admin"]))
        csrf = await console_login(other, b_admin.email)
        answer = await other.post(
            f"/console/admin/users/{cast.user.id}/password-reset", data={"csrf_token": csrf}
        )
        assert answer.status_code == 404
        assert 'id="reset-token"' not in answer.text
    assert await _links(db, cast.user.id) == []


async def _user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> uuid.UUID:
    return uuid.UUID((await client.get("/api/v1/me", headers=headers)).json()["id"])
