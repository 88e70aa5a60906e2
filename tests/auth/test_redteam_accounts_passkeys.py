"""Red team: passkeys against the account lifecycle and odd input.

An attacker who once held a console session (a stolen password on an account without a
second factor, or a stolen `tw_console` cookie) adds a passkey of their own: it needs no
password and no code, and logs in on its own.
"""

from __future__ import annotations

import httpx
import pytest

from app.authz.principal import Role
from tests.console.helpers import console_login, login_page
from tests.factories import bearer, make_agency, make_user, password_login
from tests.secrets_seen import remember
from tests.webauthn_device import Authenticator

ORIGIN = "http://127.0.0.1:8000"  # the test settings' public_url
RP_ID = "127.0.0.1"


def fresh(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def _add_passkey(browser: httpx.AsyncClient, csrf: str, device: Authenticator) -> None:
    headers = {"X-CSRF-Token": csrf}
    options = await browser.post("/console/account/passkeys/options", headers=headers)
    assert options.status_code == 200, options.text
    added = await browser.post(
        "/console/account/passkeys",
        json={"name": "Attacker key", "credential": device.create(options.json())},
        headers=headers,
    )
    assert added.status_code == 201, added.text


async def _passkey_login(browser: httpx.AsyncClient, device: Authenticator) -> httpx.Response:
    token = await login_page(browser)
    options = await browser.post("/console/login/passkey/options", headers={"X-Login-CSRF": token})
    assert options.status_code == 200, options.text
    return await browser.post(
        "/console/login/passkey",
        json={"credential": device.get(options.json())},
        headers={"X-Login-CSRF": token},
    )


@pytest.fixture
def device() -> Authenticator:
    return Authenticator(rp_id=RP_ID, origin=ORIGIN)


async def test_redteam_password_reset_shuts_out_an_attackers_passkey(client, db, app, device):
    """FAILS today (finding). Attack: with a stolen password (no second factor on the
    account) the attacker logs in to the console and adds a passkey of their own. The
    agency administrator suspects the compromise and issues a password reset, which the
    API documents as "ends every session and makes the old password stop, so a suspected
    compromise is shut at once". The attacker's passkey still opens a fresh console
    session, with no password at all.

    Expected safe behaviour: the reset (an incident response) shuts every way in that the
    old credentials could have planted: the passkey login is refused (or the passkeys are
    removed with the reset).
    """
    hashing = app.state.auth.hashing
    agency = await make_agency(db)
    victim = await make_user(db, hashing, agency, Role.focal_point)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    async with fresh(app) as attacker:
        csrf = await console_login(attacker, victim.email)  # the stolen password
        await _add_passkey(attacker, csrf, device)

    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    reset = await client.post(f"/api/v1/users/{victim.id}/password-reset", headers=admin_headers)
    assert reset.status_code == 201, reset.text
    remember(reset.json()["token"])

    async with fresh(app) as attacker:
        answer = await _passkey_login(attacker, device)
        remember(attacker.cookies.get("tw_console"))
        dashboard = await attacker.get("/console/", follow_redirects=False)
    assert answer.status_code in (400, 401, 403), answer.text
    assert dashboard.status_code != 200


async def test_redteam_admin_mfa_reset_shuts_out_an_attackers_passkey(client, db, app, device):
    """FAILS today (finding). Attack: as above, the attacker planted a passkey. The
    administrator, told the account is compromised, resets the user's second factor
    ("every session of theirs ends") and issues a password reset: the attacker's passkey,
    a second factor in itself that the passkey login accepts alone, keeps logging in.

    Expected safe behaviour: an administrator's reset of the user's factors removes (or
    stops) every passkey of the user as well."""
    hashing = app.state.auth.hashing
    agency = await make_agency(db)
    victim = await make_user(db, hashing, agency, Role.reader)
    admin = await make_user(db, hashing, agency, Role.agency_admin)
    async with fresh(app) as attacker:
        csrf = await console_login(attacker, victim.email)
        await _add_passkey(attacker, csrf, device)
    admin_headers = bearer((await password_login(client, admin.email))["access_token"])
    reset = await client.post(f"/api/v1/users/{victim.id}/mfa-reset", headers=admin_headers)
    assert reset.status_code == 204, reset.text
    async with fresh(app) as attacker:
        answer = await _passkey_login(attacker, device)
        remember(attacker.cookies.get("tw_console"))
    assert answer.status_code in (400, 401, 403), answer.text


@pytest.mark.parametrize("response", [["x"], "x", 7])
async def test_redteam_passkey_login_with_a_non_object_response_is_a_4xx(
    client, db, app, device, response
):
    """FAILS today (finding). Attack: anyone can fetch a login challenge; with a known
    credential id (`rawId`, e.g. one listed in a registration's `excludeCredentials`)
    and `response` sent as a JSON array, string or number instead of an object, the
    passkey login calls `.get` on it and the server answers 500 (DESIGN §10: no 5xx).

    Expected safe behaviour: a 4xx refusal (the same "passkey refused" as any bad answer).
    """
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    async with fresh(app) as owner:
        csrf = await console_login(owner, user.email)
        await _add_passkey(owner, csrf, device)
    async with fresh(app) as attacker:
        token = await login_page(attacker)
        options = await attacker.post(
            "/console/login/passkey/options", headers={"X-Login-CSRF": token}
        )
        assertion = device.get(options.json())
        assertion["response"] = response
        answer = await attacker.post(
            "/console/login/passkey",
            json={"credential": assertion},
            headers={"X-Login-CSRF": token},
        )
    assert 400 <= answer.status_code < 500, answer.status_code
