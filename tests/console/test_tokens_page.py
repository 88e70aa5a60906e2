"""The console's personal access tokens page: list, create (shown once), revoke, with CSRF."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlmodel import select

from app.auth.models import PersonalAccessToken
from app.authz.principal import Role
from tests.console.helpers import console_login
from tests.factories import bearer, make_agency, make_user
from tests.secrets_seen import remember

PAGE = "/console/tokens"
SHOWN = re.compile(r'<code id="personal-token">([^<]+)</code>')
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
async def people(app, db):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    return {
        "reader": await make_user(db, hashing, ke, Role.reader),
        "admin": await make_user(db, hashing, ke, Role.agency_admin),
    }


def _form(csrf: str, **fields: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "csrf_token": csrf,
        "name": "nightly import",
        "scopes": ["alerts:read"],
        "expires_in_days": "30",
        **fields,
    }


async def test_create_shows_the_token_once_and_it_works(client, db, people):
    csrf = await console_login(client, people["reader"].email)
    page = await client.get(PAGE)
    assert page.status_code == 200
    assert 'href="/console/tokens"' in page.text  # the navigation entry
    assert "You have no personal access tokens." in page.text
    # Only the scopes the reader holds are offered.
    assert 'value="alerts:read"' in page.text and 'value="alerts:write"' not in page.text

    created = await client.post(PAGE, data=_form(csrf))
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    found = SHOWN.search(created.text)
    assert found
    token = html.unescape(found.group(1))
    remember(token)
    assert token.startswith("twp_")

    again = await client.get(PAGE)
    assert token not in again.text and "nightly import" in again.text
    assert token[:8] in again.text  # the hint
    me = await client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["scopes"] == ["alerts:read"]


async def test_a_form_without_the_csrf_token_is_refused(client, db, people):
    await console_login(client, people["reader"].email)
    for csrf in ("", "forged"):
        answer = await client.post(PAGE, data=_form(csrf))
        assert answer.status_code == 403
    async with db.session() as session:
        assert (await session.exec(select(PersonalAccessToken))).all() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "name"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["webhooks:manage"]}, "scopes"),
        ({"expires_in_days": "0"}, "expires_in_days"),
        ({"expires_in_days": "366"}, "expires_in_days"),
        ({"expires_in_days": "soon"}, "expires_in_days"),
        ({"expires_in_days": "9" * 40}, "expires_in_days"),
    ],
)
async def test_bad_input_is_shown_next_to_the_field(client, db, people, fields, message):
    csrf = await console_login(client, people["reader"].email)
    answer = await client.post(PAGE, data=_form(csrf, **fields))
    assert answer.status_code == 422
    assert "There is a problem" in answer.text
    assert f'id="f-{message}-error"' in answer.text or f'href="#f-{message}' in answer.text
    assert SHOWN.search(answer.text) is None
    async with db.session() as session:
        assert (await session.exec(select(PersonalAccessToken))).all() == []


async def test_revoke_from_the_page_ends_the_token(client, people):
    csrf = await console_login(client, people["admin"].email)
    created = await client.post(
        PAGE, data=_form(csrf, scopes=["alerts:read", "webhooks:manage"], name="hooks")
    )
    found = SHOWN.search(created.text)
    assert found
    token = html.unescape(found.group(1))
    remember(token)
    listed = (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert listed["scopes"] == ["alerts:read", "webhooks:manage"]
    token_id = re.search(r'action="/console/tokens/([0-9a-f-]+)/revoke"', created.text)
    assert token_id
    forged = await client.post(f"{PAGE}/{token_id.group(1)}/revoke", data={"csrf_token": "x"})
    assert forged.status_code == 403
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    answer = await client.post(f"{PAGE}/{token_id.group(1)}/revoke", data={"csrf_token": csrf})
    assert answer.status_code == 303
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert "You have no personal access tokens." in (await client.get(PAGE)).text


async def test_another_user_cannot_revoke_or_see_your_token(client, browser, people):
    csrf = await console_login(client, people["reader"].email)
    created = await client.post(PAGE, data=_form(csrf, name="mine"))
    found = SHOWN.search(created.text)
    assert found
    token = html.unescape(found.group(1))
    remember(token)
    token_id = re.search(r'action="/console/tokens/([0-9a-f-]+)/revoke"', created.text)
    assert token_id

    admin = browser()
    admin_csrf = await console_login(admin, people["admin"].email)
    page = await admin.get(PAGE)
    assert "mine" not in page.text
    answer = await admin.post(f"{PAGE}/{token_id.group(1)}/revoke", data={"csrf_token": admin_csrf})
    assert answer.status_code == 404
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    unknown = await admin.post(f"{PAGE}/{uuid.uuid4()}/revoke", data={"csrf_token": admin_csrf})
    assert unknown.status_code == 404


async def test_the_page_needs_a_login(client):
    answer = await client.get(PAGE)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login")
