"""The console in a real browser: Debian's headless Chromium driven by Playwright, against a
real `tracewire serve` on 127.0.0.1, with an axe-core accessibility check of every page.

Skipped (with the reason) when /usr/bin/chromium is missing, unless
TRACEWIRE_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure. Screenshots of each
page go to TRACEWIRE_SCREENSHOTS_DIR (default: artifacts/screenshots).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.authz.principal import Role
from tests import live
from tests.factories import PASSWORD, make_agency, make_user

CHROMIUM = Path(os.environ.get("TRACEWIRE_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TRACEWIRE_SCREENSHOTS_DIR", ROOT / "artifacts" / "screenshots"))
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SERIOUS = ("serious", "critical")
EXPECTED_4XX = "Failed to load resource: the server responded with a status of 4"


def _need_browser() -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -e '.[test]')"
    if reason is None:
        return
    if os.environ.get("TRACEWIRE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here, but {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture
async def server(db_url, tmp_path) -> AsyncIterator[str]:
    """`tracewire serve` on a free port of 127.0.0.1, on the test's database."""
    _need_browser()
    async with live.serve(
        db_url,
        tmp_path,
        RATE_LIMIT_PER_MINUTE="0",
        WEBHOOK_ALLOW_NETWORKS="127.0.0.1:9",
        WEBHOOK_REQUIRE_HTTPS="false",
        WORKER_IN_PROCESS="false",
    ) as base:
        yield base


class Person:
    """One person at one browser: logs in, visits pages, checks them, takes screenshots."""

    def __init__(self, context, base: str, name: str, backend: str, axe: str) -> None:
        self.context = context
        self.axe = axe
        self.base = base
        self.name = name
        self.backend = backend
        self.page = None
        self.shots = 0

    async def login(self, email: str) -> None:
        self.page = await self.context.new_page()
        errors: list[str] = []
        self.page.on("pageerror", lambda exc: errors.append(str(exc)))

        def on_console(msg) -> None:
            # A page answered 4xx on purpose (a form error, a 404) is logged by the browser
            # too; CSP refusals and script errors are what this catches.
            if msg.type == "error" and not msg.text.startswith(EXPECTED_4XX):
                errors.append(msg.text)

        self.page.on("console", on_console)
        self.errors = errors
        await self.page.goto(self.base + "/console/")
        assert "/console/login" in self.page.url
        await self.check("login")
        await self.page.get_by_label("Email address").fill(email)
        await self.page.get_by_label("Password").fill(PASSWORD)
        await self.page.get_by_role("button", name="Log in", exact=True).click()
        await self.page.wait_for_url(self.base + "/console/")
        await self.check("dashboard")

    async def goto(self, path: str, label: str) -> None:
        await self.page.goto(self.base + path)
        await self.check(label)

    async def check(self, label: str) -> None:
        """No stack trace, no CSP or script error, no serious axe violation; a screenshot."""
        page = self.page
        await page.wait_for_load_state("load")
        content = await page.content()
        assert "Traceback" not in content
        self.shots += 1
        name = f"{self.backend}-{self.name}-{self.shots:02d}-{label}.png"
        await page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        # Evaluated through the DevTools protocol: the page's CSP (no inline script) stays on.
        if not await page.evaluate("typeof window.axe !== 'undefined'"):
            await page.evaluate(self.axe)
        violations = await page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ["violations"]});
                return result.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 3).map(n => n.html),
                }));
            }"""
        )
        bad = [v for v in violations if v["impact"] in SERIOUS]
        assert not bad, f"{label}: accessibility violations {bad}"
        assert not self.errors, f"{label}: browser errors {self.errors}"


@pytest.fixture
def axe_source() -> str:
    """axe-core, vendored; and the screenshot folder, made."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return AXE.read_text()


async def test_the_whole_walk_in_a_browser(server, db, app, backend, axe_source):
    from playwright.async_api import async_playwright, expect

    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE", name="Kenya National Focal Point (test)")
    de = await make_agency(db, country="DE", name="German Customs (test)")
    co = await make_agency(db, country="CO", name="Colombia Police (test)")
    ke_focal = await make_user(db, hashing, ke, Role.focal_point)
    de_focal = await make_user(db, hashing, de, Role.focal_point)
    co_focal = await make_user(db, hashing, co, Role.focal_point)
    ke_admin = await make_user(db, hashing, ke, Role.agency_admin)
    operators = await make_agency(db, country="XX", name="Operators (test)")
    staff = await make_user(db, hashing, operators, Role.platform_admin)
    title = "Two rifles seized at the Busia border crossing"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            people = []
            for name in ("ke", "de", "co", "admin"):
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                people.append(Person(context, server, name, backend, axe_source))
            kenya, germany, colombia, admin = people

            # A Kenyan focal point writes a seizure alert with two items, for Germany only.
            await kenya.login(ke_focal.email)
            await kenya.page.get_by_role("link", name="New alert").click()
            await kenya.check("new-alert")
            page = kenya.page
            await page.get_by_label("Title").fill(title)
            await page.get_by_label("Country where it happened").fill("KE")
            await page.locator("#f-items-0-make").fill("Kalashnikov Concern")
            await page.locator("#f-items-0-model").fill("AKM")
            await page.locator("#f-items-0-serial_raw").fill("AK47-1234")
            await page.get_by_role("button", name="Add another item").click()
            await expect(page.locator("#f-items-1-make")).to_be_visible()
            await expect(page.locator("#f-items-0-serial_raw")).to_have_value("AK47-1234")
            await page.locator("#f-items-1-make").fill("Zastava")
            await page.locator("#f-items-1-serial_raw").fill("M70-99812")
            await page.get_by_label("TLP", exact=True).select_option("amber")
            await page.get_by_label("Audience").select_option("recipients")
            await page.get_by_label("German Customs (test) (DE)").check()
            # The live preview (script) names the recipient before anything is stored.
            preview = page.locator("#audience-preview")
            await expect(preview).to_contain_text("German Customs (test)")
            await expect(preview).not_to_contain_text("Colombia")
            await kenya.check("new-alert-filled")
            await page.get_by_role("button", name="Publish now").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text(title)
            await expect(page.locator(".tlp").first).to_have_text("TLP:AMBER")
            await expect(page.locator("table").first).to_contain_text("M70-99812")
            alert_url = page.url
            await kenya.check("alert")

            # The German focal point sees it; the Colombian one does not.
            await germany.login(de_focal.email)
            await germany.page.get_by_role("link", name="Alerts", exact=True).click()
            await germany.check("alerts")
            await germany.page.get_by_role("link", name=title).click()
            await expect(
                germany.page.get_by_text("your agency is a named recipient")
            ).to_be_visible()
            await germany.check("alert-received")

            await colombia.login(co_focal.email)
            await colombia.goto("/console/alerts", "alerts")
            assert title not in await colombia.page.content()
            answer = await colombia.page.goto(alert_url)
            assert answer.status == 404
            assert title not in await colombia.page.content()
            await colombia.check("alert-not-found")

            # A trace request from Kenya to Germany, walked to `responded`.
            await kenya.goto("/console/alerts/new?kind=trace_request", "new-trace")
            page = kenya.page
            await page.get_by_label("Title").fill("Trace of an M70 rifle")
            await page.get_by_label("Country where it happened").fill("KE")
            await page.locator("#f-items-0-make").fill("Zastava")
            await page.locator("#f-items-0-serial_raw").fill("M70-99812")
            await page.get_by_label("Requested agency").select_option(str(de.id))
            await page.get_by_label("Circumstances of the find").fill("Found in a lorry.")
            await page.get_by_label("Why the items are considered illicit").fill("Unlicensed.")
            await page.get_by_label("Intended use of the information").fill("Investigation.")
            await page.get_by_role("button", name="Publish now").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Trace of an M70 rifle")

            await germany.goto("/console/", "dashboard-with-request")
            todo = germany.page.get_by_role("region", name="Trace requests needing action")
            await todo.get_by_role("link", name="Trace of an M70 rifle").click()
            await germany.check("trace-submitted")
            await germany.page.get_by_role("button", name="Acknowledge receipt").click()
            await expect(germany.page.locator(".meta .status")).to_have_text("acknowledged")
            await germany.check("trace-acknowledged")
            page = germany.page
            await page.get_by_label("Outcome").select_option("refused")
            await page.get_by_role("button", name="Send response").click()
            await expect(page.locator("#f-reasons-error")).to_be_visible()
            await germany.check("trace-respond-error")
            await page.get_by_label("Outcome").select_option("traced")
            await page.get_by_label("Manufacturer").fill("Zastava Arms, Kragujevac")
            await page.get_by_role("button", name="Send response").click()
            await expect(page.locator(".meta .status")).to_have_text("responded")
            await germany.check("trace-responded")
            await kenya.goto("/console/traces", "traces")
            await kenya.page.get_by_role("link", name="Trace of an M70 rifle").click()
            await expect(kenya.page.get_by_text("Zastava Arms, Kragujevac")).to_be_visible()
            await kenya.check("trace-response-received")

            # The Kenyan agency admin adds a user and a webhook subscription.
            await admin.login(ke_admin.email)
            await admin.page.get_by_role("link", name="Users").click()
            await admin.check("users")
            page = admin.page
            await page.get_by_label("Email address").fill("new.officer@tracewire.example")
            await page.get_by_label("Full name").fill("New Officer")
            await page.get_by_label("Role").select_option("focal_point")
            await page.get_by_label("Initial password").fill("a long enough password")
            await page.get_by_role("button", name="Add user").click()
            await expect(
                page.get_by_role("cell", name="new.officer@tracewire.example", exact=True)
            ).to_be_visible()
            await admin.check("user-added")
            await page.get_by_role("link", name="Webhooks").click()
            await admin.check("subscriptions")
            await page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/tracewire")
            await page.get_by_label("seized weapon").check()
            await page.get_by_role("button", name="Subscribe").click()
            secret = await page.locator("#webhook-secret").text_content()
            assert secret and re.fullmatch(r"whsec_\S+", secret)
            await admin.check("subscription-created")
            await page.get_by_role("link", name="Its delivery log").click()
            await admin.check("deliveries")
            await admin.goto("/console/admin/audit", "audit")
            await admin.goto("/console/admin/clients", "clients")
            await page.get_by_label("Name").fill("Case management system")
            await page.get_by_role("button", name="Register client").click()
            assert (await page.locator("#client-secret").text_content() or "").startswith("tws_")
            await admin.check("client-registered")
            await admin.goto("/console/admin/groups", "groups")
            await admin.goto("/console/admin/policy", "policy")
            await admin.goto("/console/admin/security", "security")
            await admin.goto("/console/account/security", "own-second-factor")
            await page.get_by_role("button", name="Set up an authenticator app").click()
            assert await page.locator("#totp-secret").text_content()
            await admin.check("authenticator-set-up")
            await admin.goto("/console/tokens", "access-tokens")
            await germany.goto("/console/hits", "hits")
            await germany.goto("/console/alerts?q=rifles&tlp=amber", "alerts-search")

            # A platform administrator sees every agency.
            operator = Person(
                await browser.new_context(viewport={"width": 1280, "height": 900}),
                server,
                "operator",
                backend,
                axe_source,
            )
            await operator.login(staff.email)
            await operator.goto("/console/platform/agencies", "agencies")
            await expect(
                operator.page.get_by_role("cell", name="Colombia Police (test)", exact=True)
            ).to_be_visible()
            # The page where an invited administrator chooses a password.
            await operator.goto("/console/set-password", "set-password")

            # Logging out ends the session.
            await admin.page.get_by_role("button", name="Log out").click()
            await admin.page.wait_for_url(re.compile(r".*/console/login$"))
            await admin.page.goto(server + "/console/admin/users")
            assert "/console/login" in admin.page.url
        finally:
            await browser.close()
