"""The API docs work offline: Swagger UI and ReDoc load everything from the app itself,
checked in headless Chromium with every other host unreachable, under their strict CSP."""

from __future__ import annotations

import re

import httpx

from app.core.docs import ASSETS_URL
from app.core.hardening import API_CSP
from app.main import create_app
from tests import live
from tests.conftest import settings_for
from tests.console.test_browser import CHROMIUM, _need_browser

# Chromium resolves no name but the test server's own address: the network is gone.
NO_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
# ReDoc 2 always draws its "API docs by Redocly" footer with a logo from its CDN; the CSP
# refuses it before any request is made (and the footer hides the broken image). That
# refusal is the policy at work, the one console error expected.
REDOC_LOGO_REFUSED = re.compile(
    r"^Loading the image 'https://cdn\.redoc\.ly/redoc/logo-mini\.svg' violates the "
    r"following Content Security Policy directive: \"img-src 'self' data:\""
)


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in csp.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


async def test_docs_pages_name_only_their_own_assets(tmp_path):
    app = create_app(settings_for(f"sqlite+aiosqlite:///{tmp_path}/docs.db"))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in ("/docs", "/redoc"):
                page = await client.get(path)
                assert page.status_code == 200
                urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
                assert urls, path
                assert all(u.startswith(ASSETS_URL + "/") for u in urls), urls
                for url in urls:
                    asset = await client.get(url)
                    assert asset.status_code == 200, url
                    assert asset.headers["content-security-policy"] == API_CSP
                policy = _directives(page.headers["content-security-policy"])
                assert "'self'" in policy["script-src"]
                assert not any("://" in s for v in policy.values() for s in v), policy
                assert "'unsafe-inline'" not in policy["script-src"]
                assert policy["default-src"] == ["'none'"]
            spec = await client.get("/openapi.json")
            assert "/docs" not in spec.json()["paths"]
    finally:
        await app.state.db.dispose()


async def test_docs_and_redoc_render_in_chromium_with_the_network_blocked(tmp_path):
    _need_browser()
    from playwright.async_api import async_playwright, expect

    async with live.serve(f"sqlite+aiosqlite:///{tmp_path}/docs.db", tmp_path) as base:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=[NO_NETWORK]
            )
            try:
                context = await browser.new_context()
                outside: list[str] = []
                errors: list[str] = []

                async def gate(route) -> None:
                    if route.request.url.startswith(base + "/"):
                        await route.continue_()
                    else:
                        outside.append(route.request.url)
                        await route.abort()

                await context.route("**/*", gate)
                page = await context.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                # CSP refusals and failed loads are reported on the console.
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))

                await page.goto(base + "/docs")
                await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                    "Tracewire", timeout=20_000
                )
                await expect(page.locator(".opblock-summary").first).to_be_visible()
                await expect(page.locator(".btn.authorize")).to_be_visible()

                await page.goto(base + "/redoc")
                await expect(page.locator("h1").first).to_contain_text("Tracewire", timeout=20_000)
                await expect(page.get_by_role("menuitem").first).to_be_visible()
                await page.wait_for_load_state("networkidle")
            finally:
                await browser.close()
    assert outside == [], f"the docs reached outside the app: {outside}"
    assert [e for e in errors if not REDOC_LOGO_REFUSED.match(e)] == [], errors
