"""Single sign-on against a real OpenID Connect provider (`oidc-provider`, run by node on
127.0.0.1): the console's whole login as a browser walks it, and each refusal.

The browser is an httpx client: the app in-process at http://testserver, the provider over
real HTTP. The app fetches the provider's discovery document, keys and token endpoint over
real HTTP too, through its SSRF guard (the provider's port is allow-listed). The only thing
a test controls besides is the app's clock.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlmodel import select

from app.agencies.models import AgencyStatus, User
from app.audit.models import AuditRecord
from app.auth import mfa
from app.authz.principal import Role
from app.core.db import settle
from app.core.types import utcnow
from tests.conftest import settings_for
from tests.console.helpers import login_page
from tests.factories import make_actor, make_agency, make_user
from tests.oidc.provider import CALLBACK, Provider, refresh_target, running, through_provider
from tests.secrets_seen import remember

KE_DOMAIN = "kenya-police.example"
DE_DOMAIN = "bka.example"


@pytest.fixture
def idp(tmp_path):
    """The provider, ID tokens valid for two minutes (the expiry test moves the app's clock)."""
    with running(tmp_path, id_token_ttl=120) as provider:
        yield provider


@pytest.fixture
def settings(db_url, idp):
    return settings_for(
        db_url,
        public_url="http://testserver",
        oidc_allow_networks=[f"127.0.0.1:{idp.port}"],
        oidc_require_https=False,
    )


@pytest.fixture
def clock(app):
    state = {"now": utcnow().replace(microsecond=0)}
    app.state.auth = dataclasses.replace(app.state.auth, clock=lambda: state["now"])
    return state


class _NotTheBrowsersCallback(logging.Filter):
    """The test's browser logs the URLs it visits; the callback's carries the code. The
    app's own requests (to the provider) stay in the logs the hygiene test reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return CALLBACK not in record.getMessage()


@pytest.fixture
async def browser(app):
    """One browser: the console in-process, the provider over the network."""
    engine = app.state.db.engine
    quiet = _NotTheBrowsersCallback()
    logging.getLogger("httpx").addFilter(quiet)

    async def settled(_answer: httpx.Response) -> None:
        await settle(engine)

    async with httpx.AsyncClient(
        base_url="http://testserver",
        mounts={"all://testserver": httpx.ASGITransport(app=app)},
        trust_env=False,
        timeout=10,
        event_hooks={"response": [settled]},
    ) as http:
        yield http
    logging.getLogger("httpx").removeFilter(quiet)


async def configure(client, admin, idp: Provider, domain: str, **changes) -> httpx.Response:
    body = {
        "issuer": idp.issuer,
        "client_id": "tracewire",
        "client_secret": idp.secret("tracewire"),
        "email_domains": [domain],
        "create_users": False,
    } | changes
    return await client.put(
        f"/api/v1/agencies/{admin.agency.id}/identity-provider", json=body, headers=admin.headers
    )


@pytest.fixture
async def kenya(client, db, app, idp):
    """Kenya's agency, its administrator, and its provider (the `tracewire` client)."""
    agency = await make_agency(db, country="KE")
    admin = await make_actor(client, db, app.state.auth.hashing, agency, Role.agency_admin)
    answer = await configure(client, admin, idp, KE_DOMAIN)
    assert answer.status_code == 201, answer.text
    return admin


async def start(browser: httpx.AsyncClient, email: str) -> httpx.Response:
    token = await login_page(browser)
    answer = await browser.post(
        "/console/login/sso", data={"login_csrf": token, "email": email, "next": "/console/alerts"}
    )
    pending = browser.cookies.get("tw_console_sso")
    if pending:  # the login's PKCE verifier is in it: neither may reach a log
        payload = pending.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        remember(pending, claims["cv"])
    return answer


async def sso_login(
    browser: httpx.AsyncClient, email: str, account: str, *, rewrite=None
) -> httpx.Response:
    """The whole login: the e-mail, the provider's pages, the callback's answer."""
    started = await start(browser, email)
    assert started.status_code == 200, started.text
    authorize = refresh_target(started.text)
    if rewrite:
        authorize = rewrite(authorize)
    back = await through_provider(browser, authorize, account, stop_at=CALLBACK)
    remember(parse_qs(urlsplit(back).query).get("code", [None])[0])
    return await browser.get(back)


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {name: value}
    return urlunsplit(parts._replace(query=urlencode(query)))


async def refusals(db) -> list[AuditRecord]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "auth.login", AuditRecord.outcome == "failure"
            )
        )
        return [r for r in rows if (r.details or {}).get("grant") == "oidc"]


async def assert_refused(answer: httpx.Response, db, reason: str, browser) -> None:
    assert answer.status_code == 403, answer.text
    assert "Single sign-on refused" in answer.text
    assert browser.cookies.get("tw_console") is None
    found = [r.details["reason"] for r in await refusals(db)]
    assert any(reason in r for r in found), found
    assert (await browser.get("/console/")).status_code == 303  # not logged in


# --- logging in ---------------------------------------------------------------------------


async def test_an_existing_account_logs_in_and_is_bound_to_its_identity(
    browser, db, app, kenya, idp
):
    user = await make_user(db, app.state.auth.hashing, kenya.agency, email=f"wanjiru@{KE_DOMAIN}")
    idp.add_account("sub-wanjiru", email=f"Wanjiru@{KE_DOMAIN}", email_verified=True)

    answer = await sso_login(browser, f"wanjiru@{KE_DOMAIN}", "sub-wanjiru")
    assert answer.status_code == 200, answer.text
    assert refresh_target(answer.text) == "/console/alerts"
    remember(browser.cookies.get("tw_console"))
    assert browser.cookies.get("tw_console")
    assert (await browser.get("/console/alerts")).status_code == 200
    async with db.session() as session:
        stored = await session.get(User, user.id)
        assert (stored.oidc_issuer, stored.oidc_subject) == (idp.issuer, "sub-wanjiru")
        logins = await session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "auth.login", AuditRecord.object_id == str(user.id)
            )
        )
        assert [r.details for r in logins] == [{"grant": "oidc"}]

    # Bound: the next login finds the account by (iss, sub), even under a new address.
    idp.add_account("sub-wanjiru", email=f"w.kamau@{KE_DOMAIN}")
    browser.cookies.clear()
    again = await sso_login(browser, f"w.kamau@{KE_DOMAIN}", "sub-wanjiru")
    assert again.status_code == 200 and browser.cookies.get("tw_console"), again.text


async def test_a_first_login_creates_a_reader_when_the_agency_allows_it(
    client, browser, db, kenya, idp
):
    assert (await configure(client, kenya, idp, KE_DOMAIN, create_users=True)).status_code == 200
    idp.add_account("sub-new", email=f"otieno@{KE_DOMAIN}", name="Otieno Ouma")
    answer = await sso_login(browser, f"otieno@{KE_DOMAIN}", "sub-new")
    assert answer.status_code == 200 and browser.cookies.get("tw_console"), answer.text
    async with db.session() as session:
        user = (await session.exec(select(User).where(User.email == f"otieno@{KE_DOMAIN}"))).one()
    assert (user.role, user.agency_id, user.full_name) == (
        Role.reader,
        kenya.agency.id,
        "Otieno Ouma",
    )
    assert user.oidc_subject == "sub-new"


async def test_a_due_second_factor_is_asked_after_the_provider(
    client, browser, db, app, kenya, idp, clock
):
    assert (
        await client.put(
            f"/api/v1/agencies/{kenya.agency.id}/mfa-policy",
            json={"require_mfa": True},
            headers=kenya.headers,
        )
    ).status_code == 200
    await make_user(db, app.state.auth.hashing, kenya.agency, email=f"achieng@{KE_DOMAIN}")
    idp.add_account("sub-achieng", email=f"achieng@{KE_DOMAIN}")
    answer = await sso_login(browser, f"achieng@{KE_DOMAIN}", "sub-achieng")
    assert answer.status_code == 200, answer.text
    assert refresh_target(answer.text) == "/console/login/second-factor"
    assert browser.cookies.get("tw_console") is None  # no session before the second step
    remember(browser.cookies.get("tw_console_mfa"))
    page = await browser.get("/console/login/second-factor")
    assert page.status_code == 200 and "Set up your second factor" in page.text
    async with db.session() as session:
        user = (await session.exec(select(User).where(User.email == f"achieng@{KE_DOMAIN}"))).one()
        assert not mfa.enrolled(user) and user.totp_secret


async def test_an_unknown_domain_gets_the_neutral_answer_of_a_disabled_provider(
    client, browser, kenya, idp
):
    unknown = await start(browser, "someone@nowhere.example")
    assert (await configure(client, kenya, idp, KE_DOMAIN, enabled=False)).status_code == 200
    disabled = await start(browser, f"someone@{KE_DOMAIN}")
    assert unknown.status_code == disabled.status_code == 200
    strip = re.compile(r'name="csrf_token" value="[^"]*"')
    assert strip.sub("", unknown.text) == strip.sub("", disabled.text)
    assert "Single sign-on is not available for this address" in unknown.text


# --- refusals -----------------------------------------------------------------------------


async def test_an_email_of_another_agencys_domain_is_refused(browser, db, app, kenya, idp):
    germany = await make_agency(db, country="DE")
    await make_user(db, app.state.auth.hashing, germany, email=f"mallory@{DE_DOMAIN}")
    # Kenya's provider vouches for a German address: it may not log anyone in with it.
    idp.add_account("sub-mallory", email=f"mallory@{DE_DOMAIN}")
    answer = await sso_login(browser, f"mallory@{KE_DOMAIN}", "sub-mallory")
    await assert_refused(answer, db, "outside the agency's domains", browser)
    async with db.session() as session:
        mallory = (
            await session.exec(select(User).where(User.email == f"mallory@{DE_DOMAIN}"))
        ).one()
        assert mallory.oidc_subject is None


async def test_a_user_of_a_suspended_agency_is_refused(browser, db, app, kenya, idp):
    await make_user(db, app.state.auth.hashing, kenya.agency, email=f"kip@{KE_DOMAIN}")
    idp.add_account("sub-kip", email=f"kip@{KE_DOMAIN}")
    async with db.session() as session:
        agency = await session.get(type(kenya.agency), kenya.agency.id)
        agency.status = AgencyStatus.suspended
        session.add(agency)
        await session.commit()
    answer = await sso_login(browser, f"kip@{KE_DOMAIN}", "sub-kip")
    await assert_refused(answer, db, "agency suspended", browser)


async def test_no_account_and_no_creation_is_refused(browser, db, kenya, idp):
    idp.add_account("sub-ghost", email=f"ghost@{KE_DOMAIN}")
    answer = await sso_login(browser, f"ghost@{KE_DOMAIN}", "sub-ghost")
    await assert_refused(answer, db, "no account", browser)
    async with db.session() as session:
        assert (
            await session.exec(select(User).where(User.email == f"ghost@{KE_DOMAIN}"))
        ).first() is None


async def test_a_deactivated_account_is_refused_and_stays_unbound(browser, db, app, kenya, idp):
    user = await make_user(db, app.state.auth.hashing, kenya.agency, email=f"old@{KE_DOMAIN}")
    async with db.session() as session:
        stored = await session.get(User, user.id)
        stored.is_active = False
        session.add(stored)
        await session.commit()
    idp.add_account("sub-old", email=f"old@{KE_DOMAIN}")
    answer = await sso_login(browser, f"old@{KE_DOMAIN}", "sub-old")
    await assert_refused(answer, db, "deactivated", browser)
    async with db.session() as session:
        assert (await session.get(User, user.id)).oidc_subject is None  # nothing half-written


async def test_a_token_for_another_nonce_is_refused(browser, db, app, kenya, idp):
    await make_user(db, app.state.auth.hashing, kenya.agency, email=f"nonce@{KE_DOMAIN}")
    idp.add_account("sub-nonce", email=f"nonce@{KE_DOMAIN}")
    # The authorization request is changed on its way (another nonce): the provider's real
    # ID token then carries a nonce this login never sent.
    answer = await sso_login(
        browser,
        f"nonce@{KE_DOMAIN}",
        "sub-nonce",
        rewrite=lambda url: with_param(url, "nonce", "injected-nonce"),
    )
    await assert_refused(answer, db, "nonce", browser)


async def test_an_expired_id_token_is_refused(browser, db, app, kenya, idp, clock):
    await make_user(db, app.state.auth.hashing, kenya.agency, email=f"late@{KE_DOMAIN}")
    idp.add_account("sub-late", email=f"late@{KE_DOMAIN}")
    started = await start(browser, f"late@{KE_DOMAIN}")
    back = await through_provider(
        browser, refresh_target(started.text), "sub-late", stop_at=CALLBACK
    )
    # The provider's ID tokens last 120 s; the app is 4 minutes later (its login cookie
    # lasts 10): the token it is given is past `exp` and the leeway.
    clock["now"] += timedelta(minutes=4)
    answer = await browser.get(back)
    await assert_refused(answer, db, "exp", browser)


async def test_a_replayed_or_foreign_state_is_refused(browser, db, app, kenya, idp):
    await make_user(db, app.state.auth.hashing, kenya.agency, email=f"st@{KE_DOMAIN}")
    idp.add_account("sub-st", email=f"st@{KE_DOMAIN}")
    first = await start(browser, f"st@{KE_DOMAIN}")
    back = await through_provider(browser, refresh_target(first.text), "sub-st", stop_at=CALLBACK)
    await start(browser, f"st@{KE_DOMAIN}")  # a second login replaces the first's cookie
    answer = await browser.get(back)
    await assert_refused(answer, db, "state mismatch", browser)


async def test_a_callback_without_a_login_started_here_is_refused(browser):
    answer = await browser.get("/console/login/sso/callback?code=abc&state=def")
    assert answer.status_code == 400 and "start again" in answer.text


async def test_an_issuer_whose_discovery_names_another_is_refused(client, browser, db, kenya, idp):
    # Configured with a trailing slash, the issuer is not the one the provider names.
    answer = await configure(client, kenya, idp, KE_DOMAIN, issuer=idp.issuer + "/")
    assert answer.status_code == 200
    started = await start(browser, f"x@{KE_DOMAIN}")
    assert started.status_code == 502 and "could not log you in" in started.text
    found = [r.details["reason"] for r in await refusals(db)]
    assert found == ["discovery names another issuer"]


async def test_an_answer_naming_another_issuer_is_refused(browser, db, app, kenya, idp):
    await make_user(db, app.state.auth.hashing, kenya.agency, email=f"mix@{KE_DOMAIN}")
    idp.add_account("sub-mix", email=f"mix@{KE_DOMAIN}")
    started = await start(browser, f"mix@{KE_DOMAIN}")
    back = await through_provider(
        browser, refresh_target(started.text), "sub-mix", stop_at=CALLBACK
    )
    answer = await browser.get(with_param(back, "iss", "https://idp.attacker.example"))
    await assert_refused(answer, db, "another issuer", browser)
