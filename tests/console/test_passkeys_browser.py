"""Passkeys in a real browser: headless Chromium with a virtual authenticator (the DevTools
protocol's WebAuthn domain), against a real `tracewire serve`. Nothing of the ceremony is
mocked: Chromium makes the key and signs, the server verifies with the `webauthn` package.

The console is reached as http://localhost:<port>: browsers offer passkeys for a domain
name, never for an address such as 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.authz.principal import Role
from tests import live
from tests.console.test_browser import CHROMIUM, _need_browser
from tests.factories import PASSWORD, make_agency, make_user


@pytest.fixture
async def server(db_url, tmp_path) -> AsyncIterator[str]:
    _need_browser()
    async with live.serve(
        db_url,
        tmp_path,
        RATE_LIMIT_PER_MINUTE="0",
        WORKER_IN_PROCESS="false",
        PUBLIC_URL="http://localhost:{port}",
        CONSOLE_COOKIE_SECURE="false",
    ) as base:
        yield base.replace("127.0.0.1", "localhost")


async def test_add_a_passkey_and_log_in_with_it_in_chromium(server, db, app):
    from playwright.async_api import async_playwright, expect

    user = await make_user(db, app.state.auth.hashing, await make_agency(db), Role.focal_point)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            devtools = await context.new_cdp_session(page)
            await devtools.send("WebAuthn.enable")
            added = await devtools.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            authenticator = added["authenticatorId"]

            await page.goto(server + "/console/login")
            await page.get_by_label("Email address").fill(user.email)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in", exact=True).click()
            await page.wait_for_url(server + "/console/")
            await page.goto(server + "/console/account/security")
            await page.get_by_label("Name of the new passkey").fill("Chromium virtual key")
            await page.get_by_role("button", name="Add a passkey").click()
            await expect(page.get_by_role("cell", name="Chromium virtual key")).to_be_visible()
            stored = await devtools.send(
                "WebAuthn.getCredentials", {"authenticatorId": authenticator}
            )
            assert len(stored["credentials"]) == 1
            assert stored["credentials"][0]["isResidentCredential"] is True

            await page.get_by_role("button", name="Log out").click()
            await page.wait_for_url(server + "/console/login")
            await page.get_by_role("button", name="Log in with a passkey").click()
            await page.wait_for_url(server + "/console/")
            await expect(page.get_by_text(user.email)).to_be_visible()

            # A different device's authenticator holds no passkey of this site: refused.
            other = await browser.new_context()
            stranger = await other.new_page()
            strangers_tools = await other.new_cdp_session(stranger)
            await strangers_tools.send("WebAuthn.enable")
            await strangers_tools.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            await stranger.goto(server + "/console/login")
            await stranger.get_by_role("button", name="Log in with a passkey").click()
            await expect(stranger.locator("#passkey-error")).to_be_visible()
            assert "/console/login" in stranger.url
            assert not errors, errors
        finally:
            await browser.close()
