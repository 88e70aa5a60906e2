"""The console login's second step, as a browser sends it: the code page, the set-up page
when the agency requires a factor, and what the half-logged-in browser cannot do."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
import pyotp

from app.authz.principal import Role
from tests.auth.test_mfa import clock, code_at, enrol  # noqa: F401 - the clock fixture
from tests.console.helpers import LOGIN_CSRF, login_page
from tests.factories import PASSWORD, bearer, make_agency, make_user, password_login
from tests.secrets_seen import remember

SECOND = "/console/login/second-factor"


async def password_step(client: httpx.AsyncClient, email: str) -> httpx.Response:
    token = await login_page(client)
    return await client.post(
        "/console/login",
        data={"login_csrf": token, "email": email, "password": PASSWORD, "next": "/console/alerts"},
    )


async def code_step(client: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await client.get(SECOND)
    assert page.status_code == 200, page.text
    csrf = LOGIN_CSRF.search(page.text)
    assert csrf
    return await client.post(SECOND, data={"login_csrf": csrf.group(1), "code": code})


async def test_an_enrolled_user_gives_a_code_before_the_session_opens(client, db, app, clock):  # noqa: F811
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.focal_point)
    headers = bearer((await password_login(client, user.email))["access_token"])
    secret, _codes = await enrol(client, headers, clock["now"])

    answer = await password_step(client, user.email)
    assert answer.status_code == 303 and answer.headers["location"] == SECOND
    assert client.cookies.get("tw_console") is None  # no session yet
    pending = client.cookies.get("tw_console_mfa")
    assert pending
    # Half logged in: the console sends you back to the login, and the pending cookie is
    # no bearer token.
    assert (await client.get("/console/")).status_code in (303, 307)
    assert (await client.get("/api/v1/me", headers=bearer(pending))).status_code == 401

    wrong = await code_step(
        client, "000000" if code_at(secret, clock["now"]) != "000000" else "111111"
    )
    assert wrong.status_code == 401
    assert client.cookies.get("tw_console") is None
    clock["now"] += timedelta(seconds=30)
    done = await code_step(client, code_at(secret, clock["now"]))
    assert done.status_code == 303 and done.headers["location"] == "/console/alerts"
    remember(client.cookies.get("tw_console"))
    assert (await client.get("/console/")).status_code == 200
    # The pending cookie is spent: the same code cannot open a second session.
    assert client.cookies.get("tw_console_mfa") is None


async def test_a_required_factor_is_set_up_at_login_with_a_qr_code(client, db, app, clock):  # noqa: F811
    agency = await make_agency(db)
    admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    user = await make_user(db, app.state.auth.hashing, agency, Role.reader)
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    policy = await client.put(
        f"/api/v1/agencies/{agency.id}/mfa-policy",
        json={"require_mfa": True},
        headers=admin_headers,
    )
    assert policy.status_code == 200

    answer = await password_step(client, user.email)
    assert answer.status_code == 303 and answer.headers["location"] == SECOND
    page = await client.get(SECOND)
    assert "<svg" in page.text and "Set up your second factor" in page.text
    secret = html.unescape(re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1))
    remember(secret)
    # Reloading the page shows the same secret (it is bound to this login).
    assert secret in (await client.get(SECOND)).text
    csrf = LOGIN_CSRF.search((await client.get(SECOND)).text).group(1)
    done = await client.post(
        SECOND, data={"login_csrf": csrf, "code": pyotp.TOTP(secret).at(clock["now"])}
    )
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10
    remember(*codes)
    assert done.headers["cache-control"] == "no-store"
    assert (await client.get("/console/")).status_code == 200
    # The API now takes a password and a code from this user.
    clock["now"] += timedelta(seconds=30)
    token = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user.email, "password": PASSWORD,
              "otp": pyotp.TOTP(secret).at(clock["now"])},
    )  # fmt: skip
    assert token.status_code == 200


async def test_a_secret_started_by_another_login_is_never_shown(db, app, clock):  # noqa: F811
    """Two browsers reach the set-up page with the same password: the first one's secret
    is replaced by the second's, and the first browser must start again."""
    agency = await make_agency(db)
    async with db.session() as session:
        agency.require_mfa = True
        session.add(agency)
        await session.commit()
    user = await make_user(db, app.state.auth.hashing, agency, Role.reader)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as first,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as second,
    ):
        await password_step(first, user.email)
        first_page = (await first.get(SECOND)).text
        await password_step(second, user.email)
        second_page = (await second.get(SECOND)).text
        pattern = r'id="totp-secret">([A-Z2-7]+)<'
        assert re.search(pattern, first_page).group(1) != re.search(pattern, second_page).group(1)
        again = await first.get(SECOND)
        assert again.status_code == 303 and again.headers["location"] == "/console/login"


async def test_the_account_page_sets_up_renews_and_removes_the_factor(client, db, app, clock):  # noqa: F811
    from tests.console.helpers import console_login, csrf_of

    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    csrf = await console_login(client, user.email)
    page = await client.get("/console/account/security")
    assert "No second factor is set up" in page.text
    started = await client.post("/console/account/security/start", data={"csrf_token": csrf})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', started.text).group(1)
    remember(secret)
    forged = await client.post(
        "/console/account/security/confirm", data={"csrf_token": "forged", "code": "123456"}
    )
    assert forged.status_code == 403
    done = await client.post(
        "/console/account/security/confirm",
        data={"csrf_token": csrf, "code": pyotp.TOTP(secret).at(clock["now"])},
    )
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10
    remember(*codes)
    assert "10 recovery codes left" in (await client.get("/console/account/security")).text
    # The next login asks for the code.
    second = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    async with second:
        assert (await password_step(second, user.email)).headers["location"] == SECOND
    # Removing it needs a fresh code, and ends this session too.
    clock["now"] += timedelta(seconds=30)
    csrf = csrf_of((await client.get("/console/account/security")).text)
    removed = await client.post(
        "/console/account/security/remove",
        data={"csrf_token": csrf, "code": pyotp.TOTP(secret).at(clock["now"])},
    )
    assert removed.status_code == 303 and removed.headers["location"] == "/console/login"
    assert (await client.get("/console/")).status_code in (303, 307)
    assert (await password_step(client, user.email)).headers["location"] == "/console/alerts"
