"""The second factor over the API: enrolment, the password grant's code, replays, recovery
codes, the back-off, the agency's and the platform's rule, removal and an admin's reset."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import httpx
import pyotp
import pytest
from sqlmodel import select

from app.agencies.models import User
from app.auth.models import RecoveryCode
from app.authz.principal import Role
from app.core.types import utcnow
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


@pytest.fixture
def clock(app) -> dict[str, datetime]:
    """The app's clock, moved by the test (codes are computed for the same instant)."""
    # The middle of a 30-second step, so "one step either side" is exact.
    now = utcnow().replace(microsecond=0)
    now -= timedelta(seconds=now.timestamp() % 30 - 15)
    state = {"now": now}
    app.state.auth = dataclasses.replace(app.state.auth, clock=lambda: state["now"])
    return state


def code_at(secret: str, when: datetime, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(when, counter_offset=steps)


async def grant(client: httpx.AsyncClient, email: str, otp: str | None = None, **extra: str):
    data = {"grant_type": "password", "username": email, "password": PASSWORD, **extra}
    if otp is not None:
        data["otp"] = otp
    return await client.post(TOKEN, data=data)


async def enrol(client: httpx.AsyncClient, headers: dict, now: datetime) -> tuple[str, list[str]]:
    """Set up TOTP through the API; the secret and the recovery codes."""
    started = await client.post("/api/v1/me/mfa/totp", headers=headers)
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert "<svg" in started.json()["qr_svg"]
    assert started.headers["cache-control"] == "no-store"
    confirmed = await client.post(
        "/api/v1/me/mfa/totp/confirm", json={"code": code_at(secret, now)}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    remember(secret, *codes)
    return secret, codes


@pytest.fixture
async def enrolled(client, db, app, clock):
    """A focal point with TOTP set up: (user, secret, recovery codes)."""
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.focal_point)
    headers = bearer((await password_login(client, user.email))["access_token"])
    secret, codes = await enrol(client, headers, clock["now"])
    return user, secret, codes


async def test_enrolment_confirms_with_the_first_code_and_stores_codes_hashed(
    client, db, app, clock
):
    user = await make_user(db, app.state.auth.hashing, await make_agency(db))
    headers = bearer((await password_login(client, user.email))["access_token"])
    started = await client.post("/api/v1/me/mfa/totp", headers=headers)
    secret = started.json()["secret"]
    remember(secret)
    wrong = await client.post(
        "/api/v1/me/mfa/totp/confirm", json={"code": "000000"}, headers=headers
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "body.code"
    status = await client.get("/api/v1/me/mfa", headers=headers)
    assert status.json()["enrolled"] is False  # not before the first right code
    confirmed = await client.post(
        "/api/v1/me/mfa/totp/confirm", json={"code": code_at(secret, clock["now"])}, headers=headers
    )
    codes = confirmed.json()["recovery_codes"]
    remember(*codes)
    assert len(codes) == 10 and len(set(codes)) == 10
    status = (await client.get("/api/v1/me/mfa", headers=headers)).json()
    assert status == {
        "enrolled": True,
        "confirmed_at": status["confirmed_at"],
        "recovery_codes_left": 10,
        "required": False,
    }
    async with db.session() as session:
        stored = (await session.exec(select(RecoveryCode))).all()
    assert len(stored) == 10
    assert not any(code.replace("-", "") in row.code_hash for code in codes for row in stored)
    # A second enrolment over a confirmed one is refused: it is removed or reset first.
    assert (await client.post("/api/v1/me/mfa/totp", headers=headers)).status_code == 409


async def test_password_grant_needs_the_code_once_enrolled(client, enrolled, clock):
    user, secret, _codes = enrolled
    missing = await grant(client, user.email)
    assert missing.status_code == 400
    assert missing.json()["error"] == "mfa_required"
    assert "access_token" not in missing.json()
    wrong = await grant(
        client, user.email, "123456" if code_at(secret, clock["now"]) != "123456" else "654321"
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The code of the step before, now and after pass; two steps away does not.
    clock["now"] += timedelta(seconds=30)
    assert (await grant(client, user.email, code_at(secret, clock["now"], -2))).status_code == 400
    good = await grant(client, user.email, code_at(secret, clock["now"], 1))
    assert good.status_code == 200, good.text
    me = await client.get("/api/v1/me", headers=bearer(good.json()["access_token"]))
    assert me.json()["id"] == str(user.id)


async def test_a_code_is_good_once_and_so_is_every_older_one(client, enrolled, clock):
    user, secret, _codes = enrolled
    clock["now"] += timedelta(seconds=60)
    code = code_at(secret, clock["now"])
    assert (await grant(client, user.email, code)).status_code == 200
    replayed = await grant(client, user.email, code)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    # The step before was not used, but it is older than the one accepted: refused too.
    assert (await grant(client, user.email, code_at(secret, clock["now"], -1))).status_code == 400
    clock["now"] += timedelta(seconds=30)
    assert (await grant(client, user.email, code_at(secret, clock["now"]))).status_code == 200


async def test_a_recovery_code_logs_in_once(client, enrolled):
    user, _secret, codes = enrolled
    first = await grant(client, user.email, codes[0].upper().replace("-", " "))  # as typed
    assert first.status_code == 200, first.text
    again = await grant(client, user.email, codes[0])
    assert again.status_code == 400
    headers = bearer(first.json()["access_token"])
    assert (await client.get("/api/v1/me/mfa", headers=headers)).json()["recovery_codes_left"] == 9


async def test_wrong_codes_count_on_the_back_off_and_a_known_password_does_not_reset_it(
    client, enrolled, app, clock
):
    user, secret, _codes = enrolled
    limit = app.state.settings.login_max_failures
    bad = "000000" if code_at(secret, clock["now"]) != "000000" else "111111"
    answers = [(await grant(client, user.email, bad)).status_code for _ in range(limit + 1)]
    assert answers == [400] * limit + [429]
    # The right password and even the right code wait out the block.
    blocked = await grant(client, user.email, code_at(secret, clock["now"]))
    assert blocked.status_code == 429
    clock["now"] += timedelta(seconds=app.state.settings.login_backoff_max_seconds + 30)
    assert (await grant(client, user.email, code_at(secret, clock["now"]))).status_code == 200


async def test_agency_rule_refuses_a_token_before_enrolment(client, db, app, clock):
    agency = await make_agency(db)
    admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    reader = await make_user(db, app.state.auth.hashing, agency, Role.reader)
    outsider = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.agency_admin)
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    reader_headers = bearer((await password_login(client, reader.email))["access_token"])
    policy = f"/api/v1/agencies/{agency.id}/mfa-policy"
    outsider_headers = bearer((await password_login(client, outsider.email))["access_token"])
    assert (
        await client.put(policy, json={"require_mfa": True}, headers=outsider_headers)
    ).status_code == 404
    assert (
        await client.put(policy, json={"require_mfa": True}, headers=reader_headers)
    ).status_code == 403
    done = await client.put(policy, json={"require_mfa": True}, headers=admin_headers)
    assert done.status_code == 200 and done.json() == {"require_mfa": True}

    refused = await grant(client, reader.email)
    assert refused.status_code == 400
    assert refused.json()["error"] == "mfa_enrollment_required"
    assert "access_token" not in refused.json()
    # A token from before the rule still works until it expires; it can enrol.
    secret, _codes = await enrol(client, reader_headers, clock["now"])
    clock["now"] += timedelta(seconds=30)
    assert (await grant(client, reader.email, code_at(secret, clock["now"]))).status_code == 200
    # While the rule stands, the factor cannot be removed by its user.
    clock["now"] += timedelta(seconds=30)
    removed = await client.post(
        "/api/v1/me/mfa/remove",
        json={"code": code_at(secret, clock["now"])},
        headers=reader_headers,
    )
    assert removed.status_code == 409


async def test_platform_rule_applies_to_every_agency(db_url, tmp_path):
    from app.main import create_app
    from tests.conftest import settings_for

    app = create_app(settings_for(db_url, require_mfa=True))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            user = await make_user(
                app.state.db, app.state.auth.hashing, await make_agency(app.state.db)
            )
            refused = await grant(client, user.email)
            assert refused.status_code == 400
            assert refused.json()["error"] == "mfa_enrollment_required"
    finally:
        await app.state.db.dispose()


async def test_removing_your_factor_needs_a_code_and_ends_every_session(client, enrolled, clock):
    user, secret, _codes = enrolled
    clock["now"] += timedelta(seconds=30)
    tokens = (await grant(client, user.email, code_at(secret, clock["now"]))).json()
    headers = bearer(tokens["access_token"])
    wrong = await client.post("/api/v1/me/mfa/remove", json={"code": "000000"}, headers=headers)
    assert wrong.status_code in (400, 429)
    clock["now"] += timedelta(seconds=30)
    done = await client.post(
        "/api/v1/me/mfa/remove", json={"code": code_at(secret, clock["now"])}, headers=headers
    )
    assert done.status_code == 204
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
    refresh = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 400
    assert (await grant(client, user.email)).status_code == 200  # a password alone again


async def test_an_admin_resets_a_lost_factor_and_the_users_sessions_end(
    client, db, app, enrolled, clock
):
    user, secret, _codes = enrolled
    clock["now"] += timedelta(seconds=30)
    user_headers = bearer(
        (await grant(client, user.email, code_at(secret, clock["now"]))).json()["access_token"]
    )
    admin = await make_user(
        db, app.state.auth.hashing, await _agency_of(db, user), Role.agency_admin
    )
    other_admin = await make_user(
        db, app.state.auth.hashing, await make_agency(db), Role.agency_admin
    )
    reader = await make_user(db, app.state.auth.hashing, await _agency_of(db, user), Role.reader)
    reset = f"/api/v1/users/{user.id}/mfa-reset"
    for who, status in ((other_admin, 404), (reader, 403)):
        headers = bearer((await password_login(client, who.email))["access_token"])
        assert (await client.post(reset, headers=headers)).status_code == status
    assert (await client.get("/api/v1/me", headers=user_headers)).status_code == 200
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    assert (await client.post(reset, headers=admin_headers)).status_code == 204
    assert (await client.get("/api/v1/me", headers=user_headers)).status_code == 401
    assert (await grant(client, user.email)).status_code == 200
    async with db.session() as session:
        assert (
            await session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user.id))
        ).all() == []


async def test_api_clients_have_no_second_factor(client, db, app):
    agency = await make_agency(db)
    api_client, secret = await make_client(db, agency)
    headers = bearer((await client_login(client, api_client.id, secret))["access_token"])
    assert (await client.get("/api/v1/me/mfa", headers=headers)).status_code == 403
    assert (await client.post("/api/v1/me/mfa/totp", headers=headers)).status_code == 403


async def test_renewed_recovery_codes_replace_the_old(client, enrolled, clock):
    user, secret, codes = enrolled
    clock["now"] += timedelta(seconds=30)
    headers = bearer(
        (await grant(client, user.email, code_at(secret, clock["now"]))).json()["access_token"]
    )
    clock["now"] += timedelta(seconds=30)
    renewed = await client.post(
        "/api/v1/me/mfa/recovery-codes",
        json={"code": code_at(secret, clock["now"])},
        headers=headers,
    )
    assert renewed.status_code == 200
    remember(*renewed.json()["recovery_codes"])
    assert (await grant(client, user.email, codes[1])).status_code == 400
    assert (await grant(client, user.email, renewed.json()["recovery_codes"][0])).status_code == 200


async def _agency_of(db, user: User):
    from app.agencies.models import Agency

    async with db.session() as session:
        return await session.get(Agency, user.agency_id)


async def test_a_login_from_before_the_rule_renews_no_token(client, db, app):
    agency = await make_agency(db)
    admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    reader = await make_user(db, app.state.auth.hashing, agency, Role.reader)
    tokens = await password_login(client, reader.email)
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    await client.put(
        f"/api/v1/agencies/{agency.id}/mfa-policy",
        json={"require_mfa": True},
        headers=admin_headers,
    )
    renewed = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 400
    assert renewed.json()["error"] == "mfa_enrollment_required"
    assert "access_token" not in renewed.json()


async def test_a_personal_access_token_manages_no_credential(client, db, app):
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.agency_admin)
    login = bearer((await password_login(client, user.email))["access_token"])
    made = await client.post(
        "/api/v1/me/tokens",
        json={"name": "script", "scopes": ["alerts:read"], "expires_in_days": 30},
        headers=login,
    )
    assert made.status_code == 201, made.text
    remember(made.json()["token"])
    token = bearer(made.json()["token"])
    for method, path, body in (
        ("GET", "/api/v1/me/mfa", None),
        ("POST", "/api/v1/me/mfa/totp", None),
        ("POST", "/api/v1/me/mfa/totp/confirm", {"code": "123456"}),
        ("POST", "/api/v1/me/mfa/recovery-codes", {"code": "123456"}),
        ("POST", "/api/v1/me/mfa/remove", {"code": "123456"}),
        ("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "x" * 20}),
        ("POST", f"/api/v1/users/{user.id}/mfa-reset", None),
        ("PUT", f"/api/v1/agencies/{user.agency_id}/mfa-policy", {"require_mfa": True}),
    ):
        answer = await client.request(method, path, json=body, headers=token)
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
    # The same user's login may (the control).
    assert (await client.get("/api/v1/me/mfa", headers=login)).status_code == 200
