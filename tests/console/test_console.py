"""The console over HTTP (in-process, both backends): login, CSRF, sessions, sharing, errors."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, func, select

from app.agencies.models import Agency
from app.alerts.models import Alert
from app.authz.principal import Role
from app.console.models import ConsoleSession
from app.core.hardening import API_CSP, CONSOLE_CSP
from app.core.types import utcnow
from tests.console.helpers import console_login, csrf_of, login_page, seizure_form
from tests.factories import bearer, make_agency, make_user, password_login

Browser = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def browser(app) -> AsyncIterator[Browser]:
    """A factory of separate cookie jars (one per person) on the same app."""
    opened: list[httpx.AsyncClient] = []

    def open_one() -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        opened.append(c)
        return c

    yield open_one
    for c in opened:
        await c.aclose()


@pytest.fixture
async def world(app, db):
    """Three agencies with a focal point each, and an admin in the first."""
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE", name=f"Kenya {uuid.uuid4().hex[:6]}")
    de = await make_agency(db, country="DE", name=f"Germany {uuid.uuid4().hex[:6]}")
    co = await make_agency(db, country="CO", name=f"Colombia {uuid.uuid4().hex[:6]}")
    return {
        "ke": ke,
        "de": de,
        "co": co,
        "ke_focal": await make_user(db, hashing, ke, Role.focal_point),
        "de_focal": await make_user(db, hashing, de, Role.focal_point),
        "co_focal": await make_user(db, hashing, co, Role.focal_point),
        "ke_admin": await make_user(db, hashing, ke, Role.agency_admin),
    }


async def _count(db, model, *where) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).one()


def _no_trace(page: str) -> None:
    assert "Traceback" not in page and 'File "' not in page


async def test_pages_need_a_session(client):
    answer = await client.get("/console/alerts?kind=seized_weapon")
    assert answer.status_code == 303
    assert (
        answer.headers["location"]
        == "/console/login?next=%2Fconsole%2Falerts%3Fkind%3Dseized_weapon"
    )


async def test_login_failure_shows_a_message_and_opens_no_session(client, world, db):
    token = await login_page(client)
    answer = await client.post(
        "/console/login",
        data={"login_csrf": token, "email": world["ke_focal"].email, "password": "wrong password!"},
    )
    assert answer.status_code == 401
    assert "Wrong email address or password." in answer.text
    assert world["ke_focal"].email in answer.text  # the typed address stays in the form
    assert "tw_console=" not in answer.headers.get("set-cookie", "")
    assert await _count(db, ConsoleSession) == 0


async def test_login_form_needs_its_token(client, world):
    await login_page(client)
    answer = await client.post(
        "/console/login",
        data={"login_csrf": "forged", "email": world["ke_focal"].email, "password": "x" * 20},
    )
    assert answer.status_code == 403
    assert "try again" in answer.text


async def test_login_cookie_flags_and_logout_deletes_the_session(client, world, db):
    token = await login_page(client)
    answer = await client.post(
        "/console/login",
        data={
            "login_csrf": token,
            "email": world["ke_focal"].email,
            "password": "correct horse battery staple",
            "next": "https://evil.example/",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/"  # no open redirect
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "tw_console=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert await _count(db, ConsoleSession) == 1
    csrf = csrf_of((await client.get("/console/")).text)
    out = await client.post("/console/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert await _count(db, ConsoleSession) == 0
    assert (await client.get("/console/")).status_code == 303


async def test_a_post_without_the_csrf_token_is_refused(client, world, db):
    csrf = await console_login(client, world["ke_focal"].email)
    form = seizure_form(csrf, str(world["de"].id))
    for token in (None, "wrong-token", csrf[:-2]):
        sent = dict(form)
        if token is None:
            sent.pop("csrf_token")
        else:
            sent["csrf_token"] = token
        answer = await client.post("/console/alerts/new", data=sent)
        assert answer.status_code == 403, token
        assert "security token" in answer.text
        _no_trace(answer.text)
    assert await _count(db, Alert) == 0
    logout = await client.post("/console/logout", data={})
    assert logout.status_code == 403
    assert (await client.get("/console/")).status_code == 200  # still logged in


async def test_a_suspended_agencys_session_is_refused(client, world, db):
    await console_login(client, world["ke_focal"].email)
    async with db.session() as session:
        agency = await session.get(Agency, world["ke"].id)
        agency.status = "suspended"
        session.add(agency)
        await session.commit()
    answer = await client.get("/console/alerts")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login")
    assert await _count(db, ConsoleSession) == 0  # the row is gone, not just refused


async def test_idle_timeout_and_absolute_lifetime(client, world, app):
    clock = {"now": utcnow()}
    app.state.auth = dataclasses.replace(app.state.auth, clock=lambda: clock["now"])
    settings = app.state.settings
    idle = timedelta(seconds=settings.console_idle_timeout_seconds)
    await console_login(client, world["ke_focal"].email)
    # Activity keeps the session alive…
    for _ in range(3):
        clock["now"] += idle - timedelta(seconds=5)
        assert (await client.get("/console/alerts")).status_code == 200
    # …until the idle timeout passes without a request.
    clock["now"] += idle + timedelta(seconds=1)
    assert (await client.get("/console/alerts")).status_code == 303
    # The absolute lifetime ends a session even when it is used all the time.
    await console_login(client, world["ke_focal"].email)
    lifetime = timedelta(seconds=settings.console_session_lifetime_seconds)
    start = clock["now"]
    while clock["now"] < start + lifetime - idle:
        clock["now"] += idle - timedelta(seconds=5)
        assert (await client.get("/console/")).status_code == 200
    clock["now"] = start + lifetime
    assert (await client.get("/console/")).status_code == 303


async def test_restricted_alert_reaches_the_recipient_only(browser, world, db):
    ke, de, co = browser(), browser(), browser()
    csrf = await console_login(ke, world["ke_focal"].email)
    posted = await ke.post("/console/alerts/new", data=seizure_form(csrf, str(world["de"].id)))
    assert posted.status_code == 303, posted.text
    alert_url = posted.headers["location"]
    own = await ke.get(alert_url)
    assert own.status_code == 200
    assert "M70-99812" in own.text and "AK47-1234" in own.text
    assert "TLP:AMBER" in own.text
    title = "Two rifles seized at the Busia border crossing"

    await console_login(de, world["de_focal"].email)
    seen = await de.get(alert_url)
    assert seen.status_code == 200 and title in seen.text
    assert "your agency is a named recipient" in seen.text
    assert world["ke_focal"].email not in seen.text  # the author's account stays in Kenya
    assert title in (await de.get("/console/alerts")).text

    await console_login(co, world["co_focal"].email)
    hidden = await co.get(alert_url)
    assert hidden.status_code == 404
    assert title not in hidden.text and "M70-99812" not in hidden.text
    assert title not in (await co.get("/console/alerts")).text
    assert title not in (await co.get("/console/alerts?q=rifles")).text
    assert title not in (await co.get("/console/")).text
    for step in ("publish", "withdraw", "edit"):
        refused = await co.post(f"{alert_url}/{step}", data={"csrf_token": csrf_of(hidden.text)})
        assert refused.status_code == 404, step
        assert title not in refused.text
    assert await _count(db, Alert, col(Alert.status) == "published") == 1


async def test_errors_are_shown_next_to_their_fields(client, world, db):
    csrf = await console_login(client, world["ke_focal"].email)
    form = seizure_form(
        csrf,
        None,
        title="",
        country="ZZ",
        **{"items.1.year": "1500", "handling.tlp": "red", "handling.audience": "community"},
    )
    answer = await client.post("/console/alerts/new", data=form)
    assert answer.status_code == 422
    text = answer.text
    assert 'id="f-title-error"' in text
    assert 'id="f-country-error"' in text and "ISO 3166-1" in text
    assert 'id="f-items-1-year-error"' in text
    assert 'aria-invalid="true"' in text
    assert "There is a problem" in text
    assert 'value="M70-99812"' in text  # what was typed is kept
    _no_trace(text)
    # The sharing rule refused by the service is shown next to the audience.
    form = seizure_form(csrf, None, **{"handling.tlp": "red", "handling.audience": "community"})
    answer = await client.post("/console/alerts/new", data=form)
    assert answer.status_code == 422
    assert 'id="f-handling-audience-error"' in answer.text
    assert "may not go to the whole community" in answer.text
    assert await _count(db, Alert) == 0


async def test_add_item_and_preview_keep_the_form(client, world):
    csrf = await console_login(client, world["ke_focal"].email)
    form = seizure_form(csrf, str(world["de"].id), action="add_item")
    answer = await client.post("/console/alerts/new", data=form)
    assert answer.status_code == 200
    assert 'name="items.2.make"' in answer.text and 'value="M70-99812"' in answer.text
    answer = await client.post(
        "/console/alerts/preview", data=seizure_form(csrf, str(world["de"].id))
    )
    assert answer.status_code == 200
    assert world["de"].name in answer.text and world["co"].name not in answer.text


async def test_error_pages_never_show_a_stack_trace(client, world):
    await console_login(client, world["ke_focal"].email)
    for path, status in (
        ("/console/alerts/not-an-id", 404),
        (f"/console/alerts/{uuid.uuid4()}", 404),
        ("/console/no-such-page", 404),
        ("/console/alerts?cursor=garbage", 422),
        ("/console/alerts?serial=---", 422),
        (f"/console/traces/{uuid.uuid4()}", 404),
        ("/console/platform/agencies", 403),
        ("/console/admin/audit", 403),
    ):
        answer = await client.get(path)
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html"), path
        _no_trace(answer.text)


async def test_trace_request_walk_to_responded(browser, world):
    ke, de = browser(), browser()
    csrf = await console_login(ke, world["ke_focal"].email)
    form = {
        "csrf_token": csrf,
        "kind": "trace_request",
        "action": "publish",
        "title": "Trace of an M70 rifle",
        "country": "KE",
        "items.0.category": "small_arm",
        "items.0.make": "Zastava",
        "items.0.serial_raw": "M70-99812",
        "details.addressed_to": str(world["de"].id),
        "details.circumstances": "Found in a lorry.",
        "details.illicit_reason": "Unlicensed possession.",
        "details.intended_use": "Criminal investigation.",
        "details.priority": "routine",
    }
    posted = await ke.post("/console/alerts/new", data=form)
    assert posted.status_code == 303, posted.text
    alert_id = posted.headers["location"].rsplit("/", 1)[1]
    de_csrf = await console_login(de, world["de_focal"].email)
    incoming = await de.get("/console/traces?direction=incoming")
    assert "Trace of an M70 rifle" in incoming.text
    assert (
        await de.post(f"/console/traces/{alert_id}/acknowledge", data={"csrf_token": de_csrf})
    ).status_code == 303
    missing = await de.post(f"/console/traces/{alert_id}/respond", data={"csrf_token": de_csrf})
    assert missing.status_code == 422 and 'id="f-outcome-error"' in missing.text
    refused = await de.post(
        f"/console/traces/{alert_id}/respond",
        data={"csrf_token": de_csrf, "outcome": "refused"},
    )
    assert refused.status_code == 422 and 'id="f-reasons-error"' in refused.text
    done = await de.post(
        f"/console/traces/{alert_id}/respond",
        data={"csrf_token": de_csrf, "outcome": "traced", "findings.manufacturer": "Zastava Arms"},
    )
    assert done.status_code == 303
    page = await ke.get(f"/console/traces/{alert_id}")
    assert "responded" in page.text and "Zastava Arms" in page.text
    again = await de.post(f"/console/traces/{alert_id}/acknowledge", data={"csrf_token": de_csrf})
    assert again.status_code == 409 and "Cannot acknowledge" in again.text


async def test_admin_creates_a_user_and_a_subscription(client, world, app):
    app.state.settings = app.state.settings.model_copy(
        update={"webhook_allow_networks": ["127.0.0.1:9"], "webhook_require_https": False}
    )
    csrf = await console_login(client, world["ke_admin"].email)
    email = f"new-{uuid.uuid4().hex[:8]}@tracewire.example"
    short = await client.post(
        "/console/admin/users",
        data={
            "csrf_token": csrf,
            "email": email,
            "full_name": "New",
            "role": "reader",
            "password": "short",
        },
    )
    assert short.status_code == 422 and 'id="f-password-error"' in short.text
    made = await client.post(
        "/console/admin/users",
        data={
            "csrf_token": csrf,
            "email": email,
            "full_name": "New Focal Point",
            "role": "focal_point",
            "password": "a long enough password",
        },
    )
    assert made.status_code == 303
    assert email in (await client.get(made.headers["location"])).text
    sub = await client.post(
        "/console/admin/subscriptions",
        data={"csrf_token": csrf, "url": "http://127.0.0.1:9/hook", "kinds": ["seized_weapon"]},
    )
    assert sub.status_code == 200, sub.text
    secret = re.search(r'id="webhook-secret">([^<]+)<', sub.text)
    assert secret and secret.group(1).startswith("whsec_")
    assert sub.headers["cache-control"] == "no-store"
    listing = await client.get("/console/admin/subscriptions")
    assert "http://127.0.0.1:9/hook" in listing.text and secret.group(1) not in listing.text


async def test_focal_point_cannot_use_admin_pages(client, world):
    csrf = await console_login(client, world["ke_focal"].email)
    answer = await client.post(
        "/console/admin/users",
        data={
            "csrf_token": csrf,
            "email": "x@tracewire.example",
            "full_name": "X",
            "role": "reader",
            "password": "a long enough password",
        },
    )
    assert answer.status_code == 403
    assert "administrator" in answer.text
    assert (await client.get("/console/admin/users")).status_code == 403


async def test_console_headers_and_the_api_unchanged(client, world):
    page = await client.get("/console/login")
    assert page.headers["content-security-policy"] == CONSOLE_CSP
    assert "script-src 'self'" in CONSOLE_CSP and "unsafe-inline" not in CONSOLE_CSP
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script
    static = await client.get("/console/static/console.js")
    assert static.status_code == 200
    api = await client.get("/api/v1/alerts/not-an-id")
    assert api.headers["content-security-policy"] == API_CSP
    assert api.headers["content-type"] == "application/problem+json"


def test_console_is_not_in_the_openapi_document():
    from app.main import create_app
    from tests.conftest import settings_for

    paths = create_app(settings_for("sqlite+aiosqlite:///:memory:")).openapi()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


async def test_console_logins_share_the_token_endpoints_budget(db_url):
    from app.main import create_app
    from tests.conftest import settings_for

    app = create_app(settings_for(db_url, token_rate_limit_per_minute=2))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as c:
            statuses = []
            for _ in range(3):
                token = await login_page(c)
                answer = await c.post(
                    "/console/login",
                    data={
                        "login_csrf": token,
                        "email": "nobody@tracewire.example",
                        "password": "x",
                    },
                )
                statuses.append(answer.status_code)
            assert statuses == [401, 401, 429]
    finally:
        await app.state.db.dispose()


async def test_edit_a_draft_then_publish_it(client, world):
    csrf = await console_login(client, world["ke_focal"].email)
    posted = await client.post(
        "/console/alerts/new",
        data=seizure_form(csrf, str(world["de"].id), action="save"),
    )
    assert posted.status_code == 303
    url = posted.headers["location"]
    page = await client.get(url)
    assert "draft" in page.text and "Publish" in page.text
    form_page = await client.get(url + "/edit")
    assert form_page.status_code == 200 and 'name="version" value="1"' in form_page.text
    form = seizure_form(csrf, str(world["de"].id), action="save", title="Three rifles", version="1")
    form["items.2.make"] = "Beretta"
    form["items.2.serial_raw"] = "BER-1"
    form["items.2.category"] = "small_arm"
    saved = await client.post(url + "/edit", data=form)
    assert saved.status_code == 303, saved.text
    page = await client.get(url)
    assert "Three rifles" in page.text and "BER-1" in page.text and "version 2" in page.text
    assert "update" in page.text  # the history of versions
    stale = await client.post(url + "/edit", data=form)  # still says version 1
    assert stale.status_code == 412 and "reload it" in stale.text, re.findall(
        r"<li>.*?</li>", stale.text, re.S
    )[:5]
    assert (await client.post(url + "/publish", data={"csrf_token": csrf})).status_code == 303
    again = await client.post(url + "/publish", data={"csrf_token": csrf})
    assert again.status_code == 409 and "Only a draft can be published" in again.text
    empty = await client.post(url + "/withdraw", data={"csrf_token": csrf, "reason": ""})
    assert empty.status_code == 422 and 'id="f-reason-error"' in empty.text
    gone = await client.post(url + "/withdraw", data={"csrf_token": csrf, "reason": "Duplicate"})
    assert gone.status_code == 303
    assert "Withdrawn on" in (await client.get(url)).text


async def test_platform_admin_registers_and_suspends_an_agency(browser, world, app, db):
    operator = await make_agency(db, country="XX", name=f"Operator {uuid.uuid4().hex[:6]}")
    staff = await make_user(db, app.state.auth.hashing, operator, Role.platform_admin)
    admin, focal = browser(), browser()
    await console_login(focal, world["de_focal"].email)
    csrf = await console_login(admin, staff.email)
    page = await admin.get("/console/platform/agencies")
    assert page.status_code == 200 and world["de"].name in page.text
    bad = await admin.post(
        "/console/platform/agencies",
        data={"csrf_token": csrf, "name": "New agency", "country": "QQ", "type": "police"},
    )
    assert bad.status_code == 422 and 'id="f-country-error"' in bad.text
    made = await admin.post(
        "/console/platform/agencies",
        data={"csrf_token": csrf, "name": "New agency", "country": "GH", "type": "police"},
    )
    assert made.status_code == 303
    assert "New agency" in (await admin.get("/console/platform/agencies")).text
    users = await admin.get(f"/console/admin/users?agency={world['de'].id}")
    assert users.status_code == 200 and world["de_focal"].email in users.text
    suspended = await admin.post(
        f"/console/platform/agencies/{world['de'].id}/suspend", data={"csrf_token": csrf}
    )
    assert suspended.status_code == 303
    assert (await focal.get("/console/")).status_code == 303  # its focal point is out


async def test_agency_admin_pages(client, world):
    csrf = await console_login(client, world["ke_admin"].email)
    other = await client.get(f"/console/admin/users?agency={world['de'].id}")
    assert other.status_code == 404  # another agency's users do not exist for it
    made = await client.post(
        "/console/admin/clients",
        data={"csrf_token": csrf, "name": "Case system", "scopes": ["alerts:read", "alerts:write"]},
    )
    assert made.status_code == 200
    secret = re.search(r'id="client-secret">([^<]+)<', made.text).group(1)
    assert secret not in (await client.get("/console/admin/clients")).text
    group = await client.post(
        "/console/admin/groups",
        data={"csrf_token": csrf, "name": "East Africa", "members": [str(world["de"].id)]},
    )
    assert group.status_code == 303
    page = (await client.get("/console/admin/groups")).text
    assert "East Africa" in page
    group_id = re.search(r"/console/admin/groups/([0-9a-f-]{36})/members\"", page).group(1)
    co, de = str(world["co"].id), str(world["de"].id)

    def member(name: str) -> str:  # the remove button next to a listed member
        return f'aria-label="Remove {name} from East Africa"'

    assert member(world["de"].name) in page and member(world["co"].name) not in page
    added = await client.post(
        f"/console/admin/groups/{group_id}/members", data={"csrf_token": csrf, "agency_id": co}
    )
    assert added.status_code == 303
    assert member(world["co"].name) in (await client.get("/console/admin/groups")).text
    removed = await client.post(
        f"/console/admin/groups/{group_id}/members/{de}/remove", data={"csrf_token": csrf}
    )
    assert removed.status_code == 303
    assert member(world["de"].name) not in (await client.get("/console/admin/groups")).text
    unchosen = await client.post(
        f"/console/admin/groups/{group_id}/members", data={"csrf_token": csrf, "agency_id": ""}
    )
    assert unchosen.status_code == 422 and f'id="f-member-{group_id}-error"' in unchosen.text
    owner = await client.post(
        f"/console/admin/groups/{group_id}/members/{world['ke'].id}/remove",
        data={"csrf_token": csrf},
    )
    assert owner.status_code == 409 and "cannot leave" in owner.text
    bad = await client.post("/console/admin/policy", data={"csrf_token": csrf, "policy": "{oops"})
    assert bad.status_code == 422 and 'id="f-policy-error"' in bad.text
    policy = '{"trace_request": {"ceiling": {"addressee_only": true}}}'
    ok = await client.post("/console/admin/policy", data={"csrf_token": csrf, "policy": policy})
    assert ok.status_code == 303
    assert "addressee_only" in (await client.get("/console/admin/policy")).text
    trail = await client.get("/console/admin/audit")
    assert (
        trail.status_code == 200 and "policy.update" in trail.text and "client.create" in trail.text
    )


# --- what the console cannot read is a form error, never a 500 ----------------------------

UNREADABLE_ITEM_KEYS = (
    "items.x.category",
    "items.-1.category",
    "items.1e3.category",
    "items.\u0663.category",  # an Arabic-Indic digit, which int() would read
    "items.00.category",
    "items.0.colour",
    "items.0",
    "items..category",
    "items.99999999999999999999999.category",
)


@pytest.mark.parametrize("key", UNREADABLE_ITEM_KEYS)
async def test_unreadable_item_fields_are_form_errors(client, world, db, key):
    csrf = await console_login(client, world["ke_focal"].email)
    for action in ("save", "publish"):
        form = seizure_form(csrf, str(world["de"].id), action=action, **{key: "small_arm"})
        answer = await client.post("/console/alerts/new", data=form)
        assert answer.status_code == 422, answer.text
        assert "Not a field of this form" in answer.text
        assert 'value="M70-99812"' in answer.text  # the rest of the form is kept
        _no_trace(answer.text)
    # Adding a row or previewing reads nothing from the unreadable key: no error, no 500.
    form = seizure_form(csrf, str(world["de"].id), action="add_item", **{key: "small_arm"})
    assert (await client.post("/console/alerts/new", data=form)).status_code == 200
    assert (await client.post("/console/alerts/preview", data=form)).status_code == 200
    assert await _count(db, Alert) == 0


async def test_item_rows_past_the_limit_and_edits_are_refused_by_name(client, world, db):
    csrf = await console_login(client, world["ke_focal"].email)
    form = seizure_form(csrf, None, **{"items.100.category": "small_arm", "items.100.make": "X"})
    answer = await client.post("/console/alerts/new", data=form)
    assert answer.status_code == 422
    assert 'href="#f-items-100-category"' in answer.text and "At most 100 items" in answer.text
    posted = await client.post(
        "/console/alerts/new", data=seizure_form(csrf, str(world["de"].id), action="save")
    )
    assert posted.status_code == 303
    edit = seizure_form(
        csrf, str(world["de"].id), action="save", version="1", **{"items.x.category": "ammunition"}
    )
    answer = await client.post(posted.headers["location"] + "/edit", data=edit)
    assert answer.status_code == 422 and 'href="#f-items-x-category"' in answer.text
    _no_trace(answer.text)


@pytest.mark.parametrize(
    ("field", "value", "error_id"),
    [
        ("occurred_at", "9999-12-31T23:59:59-14:00", "f-occurred_at-error"),
        ("occurred_at", "0001-01-01T00:00:00+14:00", "f-occurred_at-error"),
        ("details.seized_at", "9999-12-31T23:59:59-14:00", "f-details-seized_at-error"),
        ("occurred_at", "1700000000", "f-occurred_at-error"),
    ],
)
async def test_alert_form_dates_out_of_range_are_shown_next_to_the_field(
    client, world, db, field, value, error_id
):
    csrf = await console_login(client, world["ke_focal"].email)
    answer = await client.post(
        "/console/alerts/new", data=seizure_form(csrf, str(world["de"].id), **{field: value})
    )
    assert answer.status_code == 422, answer.text
    assert f'id="{error_id}"' in answer.text
    _no_trace(answer.text)
    assert await _count(db, Alert) == 0


async def test_policy_editor_refuses_json_it_cannot_read(client, world):
    csrf = await console_login(client, world["ke_admin"].email)
    for text, message in (
        ("[" * 10_000 + "]" * 10_000, "nested deeper"),
        ('{"seized_weapon": ' * 50 + "{}" + "}" * 50, "nested deeper"),
        ("[" * 100_000, "nested deeper"),
        ('{"seized_weapon": {"default": {"tlp": "' + "x" * 300_000 + '"}}}', "longer than"),
        ("[" + "0," * 20_000 + "0]", "array longer"),
    ):
        answer = await client.post(
            "/console/admin/policy", data={"csrf_token": csrf, "policy": text}
        )
        assert answer.status_code == 422, answer.text[:300]
        assert 'id="f-policy-error"' in answer.text and message in answer.text
        _no_trace(answer.text)
    for raw in ("%ED%A0%80", "%FF%FE", '"\ud800"'):  # undecodable and surrogate text
        answer = await client.post(
            "/console/admin/policy",
            content=f"csrf_token={csrf}&policy={raw}".encode("utf-8", "surrogatepass"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code in (400, 422), answer.text[:300]
        _no_trace(answer.text)
    overflowing = {
        "seized_weapon": {
            "default": {
                "tlp": "green",
                "audience": "community",
                "embargo_until": "9999-12-31T23:59:59-14:00",
            }
        }
    }
    answer = await client.post(
        "/console/admin/policy", data={"csrf_token": csrf, "policy": json.dumps(overflowing)}
    )
    assert answer.status_code == 422 and "Out of range" in answer.text
    assert "embargo_until" not in (await client.get("/console/admin/policy")).text


async def test_replay_since_and_audit_paging_refuse_what_they_cannot_read(client, world):
    login = await password_login(client, world["ke_admin"].email)
    sub = await client.post(
        "/api/v1/subscriptions",
        json={"url": "https://hooks.example.org/tracewire"},
        headers=bearer(login["access_token"]),
    )
    assert sub.status_code == 201, sub.text
    csrf = await console_login(client, world["ke_admin"].email)
    url = f"/console/admin/subscriptions/{sub.json()['id']}/replay"
    for since in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "yesterday", ""):
        answer = await client.post(url, data={"csrf_token": csrf, "since": since})
        assert answer.status_code == 422, since
        assert 'id="f-since-error"' in answer.text
        _no_trace(answer.text)
    fine = await client.post(url, data={"csrf_token": csrf, "since": "2026-01-01"})
    assert fine.status_code == 200 and "deliveries queued again" in fine.text
    for before in ("\u00b2", "\u0663", "-1", "9" * 40):
        answer = await client.get("/console/admin/audit", params={"before": before})
        assert answer.status_code == 200, before


async def test_a_recipient_sees_the_history_since_publication_as_versions_only(client, world):
    """The originator's history names who changed which fields, drafts included; a
    recipient's shows versions and status since publication, nothing before, no one."""
    csrf = await console_login(client, world["ke_focal"].email)
    posted = await client.post(
        "/console/alerts/new", data=seizure_form(csrf, str(world["de"].id), action="save")
    )
    url = posted.headers["location"]
    form = seizure_form(csrf, str(world["de"].id), action="save", title="Renamed", version="1")
    assert (await client.post(url + "/edit", data=form)).status_code == 303
    assert (await client.post(url + "/publish", data={"csrf_token": csrf})).status_code == 303

    def history(page: str) -> str:
        found = re.search(r"<h2>History of versions</h2>(.*?)</table>", page, re.S)
        assert found, "no history table"
        return found.group(1)

    own = history((await client.get(url)).text)
    assert "create" in own and "title" in own and world["ke_focal"].email in own
    await console_login(client, world["de_focal"].email)
    page = await client.get(url)
    assert page.status_code == 200
    theirs = history(page.text)
    assert "publish" in theirs
    for hidden in ("create", "update", "title", "items", "handling", world["ke_focal"].email):
        assert hidden not in theirs, hidden


async def test_inputs_past_the_apis_limits_are_refused_with_its_limit(client, world):
    csrf = await console_login(client, world["ke_focal"].email)
    for query, field, limit in (
        ("tag=" + "t" * 61, "tag", "at most 60 characters"),
        ("serial=" + "S" * 101, "serial", "at most 100 characters"),
        ("q=" + "q" * 201, "q", "at most 200 characters"),
        ("country=KEN", "country", "at most 2 characters"),
    ):
        answer = await client.get(f"/console/alerts?{query}")
        assert answer.status_code == 422, query
        assert f'id="f-{field}-error"' in answer.text and limit in answer.text, query
    posted = await client.post(
        "/console/alerts/new", data=seizure_form(csrf, str(world["de"].id), action="publish")
    )
    url = posted.headers["location"]
    long = await client.post(url + "/withdraw", data={"csrf_token": csrf, "reason": "r" * 2001})
    assert long.status_code == 422 and "at most 2000 characters" in long.text
    assert "Withdrawn on" not in (await client.get(url)).text


async def test_login_past_the_token_endpoints_limits_is_refused_not_cut(client, world):
    token = await login_page(client)
    answer = await client.post(
        "/console/login",
        data={"login_csrf": token, "email": world["ke_focal"].email, "password": "p" * 1025},
    )
    assert answer.status_code == 422 and "at most 1024 characters" in answer.text
