"""Passkeys through the console's JSON endpoints, with a software authenticator that
signs for real: adding one, logging in with it, and every way an answer must be refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select

from app.agencies.models import User
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.types import utcnow
from tests.console.helpers import console_login, login_page
from tests.factories import make_agency, make_user
from tests.secrets_seen import remember
from tests.webauthn_device import Authenticator

ORIGIN = "http://127.0.0.1:8000"  # the test settings' public_url
RP_ID = "127.0.0.1"


@pytest.fixture
def device() -> Authenticator:
    return Authenticator(rp_id=RP_ID, origin=ORIGIN)


def fresh(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def add_passkey(client: httpx.AsyncClient, csrf: str, device: Authenticator, **kw: Any):
    headers = {"X-CSRF-Token": csrf}
    options = await client.post("/console/account/passkeys/options", headers=headers)
    assert options.status_code == 200, options.text
    body = options.json()
    assert body["authenticatorSelection"]["userVerification"] == "required"
    credential = device.create(body, **kw)
    return await client.post(
        "/console/account/passkeys",
        json={"name": "Desk key", "credential": credential},
        headers=headers,
    )


async def passkey_login(client: httpx.AsyncClient, device: Authenticator, **kw: Any):
    token = await login_page(client)
    headers = {"X-Login-CSRF": token}
    options = await client.post("/console/login/passkey/options", headers=headers)
    assert options.status_code == 200, options.text
    assertion = device.get(options.json(), **kw)
    headers["_challenge"] = client.cookies.get("tw_console_webauthn")
    answer = await client.post(
        "/console/login/passkey",
        json={"credential": assertion, "next": "/console/alerts"},
        headers={"X-Login-CSRF": token},
    )
    return answer, assertion, headers


@pytest.fixture
async def holder(client, db, app, device):
    """A reader who added a passkey on `device`."""
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    csrf = await console_login(client, user.email)
    added = await add_passkey(client, csrf, device)
    assert added.status_code == 201, added.text
    return user


async def test_add_a_passkey_then_log_in_with_it_alone(holder, app, db, device):
    async with fresh(app) as browser:
        answer, _assertion, _headers = await passkey_login(browser, device)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"redirect": "/console/alerts"}
        remember(browser.cookies.get("tw_console"))
        assert (await browser.get("/console/")).status_code == 200
        page = await browser.get("/console/account/security")
        assert "Desk key" in page.text
    async with db.session() as session:
        logins = (
            await session.exec(
                select(AuditRecord).where(
                    AuditRecord.action == "auth.login", AuditRecord.object_id == str(holder.id)
                )
            )
        ).all()
    assert any((r.details or {}).get("factor") == "passkey" for r in logins)


async def test_a_replayed_answer_opens_nothing(holder, app, device):
    device.counts = False  # no counter to catch the replay: the spent challenge must
    async with fresh(app) as browser:
        first, assertion, headers = await passkey_login(browser, device)
        assert first.status_code == 200
        browser.cookies.delete("tw_console")
        # The same signed answer and the same challenge cookie, again.
        challenge = headers.pop("_challenge")
        assert challenge
        browser.cookies.set("tw_console_webauthn", challenge, path="/console")
        token = await login_page(browser)
        again = await browser.post(
            "/console/login/passkey",
            json={"credential": assertion},
            headers={"X-Login-CSRF": token},
        )
        assert again.status_code in (400, 403)
        assert browser.cookies.get("tw_console") is None


@pytest.mark.parametrize(
    "tamper",
    [
        {"origin": "http://evil.example"},
        {"rp_id": "evil.example"},
        {"user_handle": "AAAAAAAAAAAAAAAAAAAAAA"},
        "no user verification",
        "counter goes back",
    ],
)
async def test_a_tampered_answer_is_refused(holder, app, device, tamper):
    kwargs: dict[str, Any] = {}
    if tamper == "no user verification":
        device.user_verified = False
    elif tamper == "counter goes back":
        device.sign_count = 10
        async with fresh(app) as browser:
            assert (await passkey_login(browser, device))[0].status_code == 200
        device.sign_count = 2  # a cloned key replays an older counter
    else:
        kwargs = tamper
    async with fresh(app) as browser:
        answer, _assertion, _headers = await passkey_login(browser, device, **kwargs)
        assert answer.status_code == 400, answer.text
        assert answer.json()["detail"] == "This passkey cannot log in here."
        assert browser.cookies.get("tw_console") is None
        assert (await browser.get("/console/")).status_code in (303, 307)


async def test_registration_is_checked_as_strictly(client, db, app, device):
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    csrf = await console_login(client, user.email)
    assert (
        await add_passkey(client, csrf, device, origin="http://evil.example")
    ).status_code == 400
    device.user_verified = False
    assert (await add_passkey(client, csrf, device)).status_code == 400
    device.user_verified = True
    forged = await client.post("/console/account/passkeys/options", headers={"X-CSRF-Token": "x"})
    assert forged.status_code == 403
    assert (await add_passkey(client, csrf, device)).status_code == 201
    # The same authenticator twice is refused.
    assert (await add_passkey(client, csrf, device)).status_code == 400


async def test_login_options_need_the_login_pages_token(app):
    async with fresh(app) as browser:
        await login_page(browser)
        refused = await browser.post(
            "/console/login/passkey/options", headers={"X-Login-CSRF": "forged"}
        )
        assert refused.status_code == 403


async def test_a_deactivated_users_passkey_is_refused(holder, app, db, device):
    async with db.session() as session:
        user = await session.get(User, holder.id)
        user.is_active = False
        user.updated_at = utcnow()
        session.add(user)
        await session.commit()
    async with fresh(app) as browser:
        answer, _assertion, _headers = await passkey_login(browser, device)
        assert answer.status_code == 400


async def test_a_removed_passkey_logs_in_no_more(client, holder, app, device):
    from tests.console.helpers import csrf_of

    page = await client.get("/console/account/security")
    csrf = csrf_of(page.text)
    action = page.text.split('action="/console/account/passkeys/')[1].split('"')[0]
    removed = await client.post(f"/console/account/passkeys/{action}", data={"csrf_token": csrf})
    assert removed.status_code == 303
    async with fresh(app) as browser:
        assert (await passkey_login(browser, device))[0].status_code == 400


async def test_a_passkey_login_satisfies_the_agencys_mfa_rule(client, db, app, device):
    agency = await make_agency(db)
    user = await make_user(db, app.state.auth.hashing, agency, Role.reader)
    csrf = await console_login(client, user.email)
    assert (await add_passkey(client, csrf, device)).status_code == 201
    async with db.session() as session:
        agency.require_mfa = True
        session.add(agency)
        await session.commit()
    async with fresh(app) as browser:
        answer, _assertion, _headers = await passkey_login(browser, device)
        assert answer.status_code == 200
        assert (await browser.get("/console/")).status_code == 200
