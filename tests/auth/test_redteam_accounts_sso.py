"""Red team: single sign-on against a real `oidc-provider` (the fixtures of
tests/auth/test_oidc.py), and the configuration API against another agency's admin."""

from __future__ import annotations

from sqlmodel import select

from app.agencies.models import User
from app.authz.principal import Role
from tests.auth import test_oidc as oidc
from tests.factories import make_actor, make_agency, make_user
from tests.secrets_seen import remember

# The real provider and its browser, as tests/auth/test_oidc.py sets them up.
idp, settings, browser, kenya = oidc.idp, oidc.settings, oidc.browser, oidc.kenya
KE_DOMAIN, configure, sso_login = oidc.KE_DOMAIN, oidc.configure, oidc.sso_login


async def test_redteam_sso_refuses_email_verified_sent_as_the_string_false(
    client, browser, db, app, kenya, idp
):
    """FAILS today (finding). Attack: a person at the agency's provider sets their profile
    address to a colleague's (e.g. the administrator's) without verifying it. Providers
    such as AWS Cognito send `email_verified` as the *string* "false"; the check only
    refuses the JSON boolean `false`, so the unverified address binds and logs in to the
    colleague's existing account (first binding by e-mail): here the agency's
    administrator's.

    Expected safe behaviour: anything but a JSON `true` (or an absent claim, if that is
    the policy) is not a verified address: refused, the account stays unbound."""
    victim = await make_user(
        db, app.state.auth.hashing, kenya.agency, Role.agency_admin, email=f"chief@{KE_DOMAIN}"
    )
    idp.add_account("sub-mallory", email=f"chief@{KE_DOMAIN}", email_verified="false")
    answer = await sso_login(browser, f"chief@{KE_DOMAIN}", "sub-mallory")
    remember(browser.cookies.get("tw_console"))
    async with db.session() as session:
        stored = await session.get(User, victim.id)
    assert browser.cookies.get("tw_console") is None, "logged in with an unverified address"
    assert stored is not None and stored.oidc_subject is None
    assert answer.status_code == 403


async def test_redteam_another_agency_cannot_claim_a_domain_whose_accounts_it_does_not_hold(
    client, db, app, idp
):
    """FAILS today (finding). Attack: Germany's administrator sets up single sign-on for
    `kenya-police.example`, a domain where Kenya's agency already has accounts. The only
    check is that no other *provider* lists it (first come, first served), so Germany now
    owns the domain: Kenya's administrators get 409 when they set up their own provider,
    and with `create_users` Germany's provider makes accounts like
    `director@kenya-police.example` in Germany's agency, which other agencies then see as
    the authors of Germany's alerts.

    Expected safe behaviour: a domain already used by another agency's live accounts is
    refused (409), and Kenya can still claim it."""
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    de = await make_agency(db, country="DE")
    await make_user(db, hashing, ke, Role.reader, email=f"wanjiru@{KE_DOMAIN}")
    ke_admin = await make_actor(client, db, hashing, ke, Role.agency_admin)
    de_admin = await make_actor(client, db, hashing, de, Role.agency_admin)
    squat = await configure(client, de_admin, idp, KE_DOMAIN, create_users=True)
    own = await configure(client, ke_admin, idp, KE_DOMAIN)
    assert squat.status_code == 409, squat.text
    assert own.status_code == 201, own.text


async def test_redteam_passing_sso_of_another_agency_never_logs_in_this_agencys_account(
    client, browser, db, app, kenya, idp
):
    """PASSES (defence holds). Attack: Germany's provider (same issuer, its own domain)
    vouches, under a subject already bound to a Kenyan account, for a German address;
    or Kenya's provider vouches for a German address. Neither opens a session, and
    neither creates or rebinds an account."""
    hashing = app.state.auth.hashing
    kenyan = await make_user(db, hashing, kenya.agency, email=f"otieno@{KE_DOMAIN}")
    idp.add_account("sub-otieno", email=f"otieno@{KE_DOMAIN}", email_verified=True)
    first = await sso_login(browser, f"otieno@{KE_DOMAIN}", "sub-otieno")
    assert first.status_code == 200 and browser.cookies.get("tw_console"), first.text
    remember(browser.cookies.get("tw_console"))
    browser.cookies.clear()

    de = await make_agency(db, country="DE")
    de_admin = await make_actor(client, db, hashing, de, Role.agency_admin)
    made = await configure(client, de_admin, idp, "bka.example", create_users=True)
    assert made.status_code == 201, made.text
    idp.add_account("sub-otieno", email="otieno@bka.example", email_verified=True)
    crossed = await sso_login(browser, "otieno@bka.example", "sub-otieno")
    assert crossed.status_code == 403 and browser.cookies.get("tw_console") is None
    async with db.session() as session:
        rows = (await session.exec(select(User).where(User.email == "otieno@bka.example"))).all()
        stored = await session.get(User, kenyan.id)
    assert rows == [] and stored is not None and stored.agency_id == kenya.agency.id
