"""One-time things used by parallel requests over HTTP against a real `tracewire serve`:
a TOTP code, a recovery code and a passkey's challenge each open exactly one login.

On PostgreSQL the requests overlap in the database (the second waits on the first's row
lock, then finds the code spent); on SQLite writers are serialised, and the same rule is
checked on a database that serialises anyway.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest

from app.authz.principal import Role
from tests import live
from tests.factories import PASSWORD, make_agency, make_user
from tests.secrets_seen import remember
from tests.webauthn_device import Authenticator

N = 8  # parallel requests per race: enough to overlap on two cores, bounded


@pytest.fixture
async def service(db_url, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    async with live.serve(
        db_url,
        tmp_path,
        RATE_LIMIT_PER_MINUTE="0",
        TOKEN_RATE_LIMIT_PER_MINUTE="0",
        WORKER_IN_PROCESS="false",
        LOGIN_MAX_FAILURES="100",  # the race's losers are failures; keep them 400s
        PUBLIC_URL="http://127.0.0.1:{port}",
    ) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield http


async def _enrolled(http: httpx.AsyncClient, email: str) -> tuple[str, list[str]]:
    token = await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    secret = (await http.post("/api/v1/me/mfa/totp", headers=headers)).json()["secret"]
    confirmed = await http.post(
        "/api/v1/me/mfa/totp/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    remember(secret, *codes)
    return secret, codes


async def _race(http: httpx.AsyncClient, email: str, otp: str) -> Counter[int]:
    data = {"grant_type": "password", "username": email, "password": PASSWORD, "otp": otp}
    answers = await asyncio.gather(*(http.post("/api/v1/auth/token", data=data) for _ in range(N)))
    return Counter(a.status_code for a in answers)


async def test_one_totp_code_opens_one_login(service, db, app):
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    secret, _codes = await _enrolled(service, user.email)
    # The next step's code: not yet used by the enrolment, and good for the next minute.
    code = pyotp.TOTP(secret).at(int(__import__("time").time()) + 30)
    statuses = await _race(service, user.email, code)
    assert statuses == Counter({200: 1, 400: N - 1}), statuses


async def test_one_recovery_code_opens_one_login(service, db, app):
    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    _secret, codes = await _enrolled(service, user.email)
    statuses = await _race(service, user.email, codes[0])
    assert statuses == Counter({200: 1, 400: N - 1}), statuses


async def test_one_passkey_challenge_opens_one_session(service, db, app):
    from tests.console.helpers import console_login, csrf_of, login_page

    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    base = str(service.base_url).rstrip("/")
    device = Authenticator(rp_id="127.0.0.1", origin=base)
    device.counts = False  # no counter: only the spent challenge stops a second use
    async with httpx.AsyncClient(base_url=base, timeout=30) as owner:
        await console_login(owner, user.email)
        headers = {"X-CSRF-Token": csrf_of((await owner.get("/console/")).text)}
        options = await owner.post("/console/account/passkeys/options", headers=headers)
        added = await owner.post(
            "/console/account/passkeys",
            json={"name": "Key", "credential": device.create(options.json())},
            headers=headers,
        )
        assert added.status_code == 201, added.text
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        token = await login_page(browser)
        options = await browser.post(
            "/console/login/passkey/options", headers={"X-Login-CSRF": token}
        )
        assertion = device.get(options.json())
        answers = await asyncio.gather(
            *(
                browser.post(
                    "/console/login/passkey",
                    json={"credential": assertion},
                    headers={"X-Login-CSRF": token},
                )
                for _ in range(N)
            )
        )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == Counter({200: 1, 400: N - 1}), statuses


async def test_parallel_wrong_passwords_are_each_counted(service, db, app):
    """Guesses sent at once take turns on the account's back-off row: none is lost."""
    import hashlib

    from app.auth.models import LoginThrottle

    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.reader)
    data = {"grant_type": "password", "username": user.email, "password": "not the password!"}
    answers = await asyncio.gather(
        *(service.post("/api/v1/auth/token", data=data) for _ in range(N))
    )
    assert Counter(a.status_code for a in answers) == Counter({400: N})
    async with db.session() as session:
        key = hashlib.sha256(user.email.encode()).hexdigest()
        row = await session.get(LoginThrottle, key)
    assert row is not None and row.failures == N
