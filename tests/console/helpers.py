"""Logging in to the console and reading its forms, as a browser would (no mocks)."""

from __future__ import annotations

import html
import re

import httpx

from tests.factories import PASSWORD
from tests.secrets_seen import remember

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The session's CSRF token, from any logged-in page."""
    found = CSRF.search(page)
    assert found, "no CSRF token on the page"
    return html.unescape(found.group(1))


async def login_page(client: httpx.AsyncClient) -> str:
    """Open the login page; its one-time form token."""
    page = await client.get("/console/login")
    assert page.status_code == 200
    found = LOGIN_CSRF.search(page.text)
    assert found
    return found.group(1)


async def console_login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the login form; the session's CSRF token."""
    token = await login_page(client)
    answer = await client.post(
        "/console/login",
        data={"login_csrf": token, "email": email, "password": password, "next": "/console/"},
    )
    assert answer.status_code == 303, answer.text
    remember(client.cookies.get("tw_console"))
    dashboard = await client.get("/console/")
    assert dashboard.status_code == 200, dashboard.text
    return csrf_of(dashboard.text)


def seizure_form(csrf: str, recipient: str | None, **extra: str) -> dict[str, str | list[str]]:
    """The new-alert form of a seizure with two items, addressed to one agency."""
    form: dict[str, str | list[str]] = {
        "csrf_token": csrf,
        "kind": "seized_weapon",
        "action": "publish",
        "title": "Two rifles seized at the Busia border crossing",
        "summary": "Concealed in a lorry carrying maize.",
        "country": "KE",
        "occurred_at": "2026-11-20",
        "items.0.category": "small_arm",
        "items.0.make": "Kalashnikov Concern",
        "items.0.model": "AKM",
        "items.0.serial_raw": "AK47-1234",
        "items.0.serial_status": "present",
        "items.0.quantity": "1",
        "items.0.unit": "pieces",
        "items.1.category": "small_arm",
        "items.1.make": "Zastava",
        "items.1.model": "M70",
        "items.1.serial_raw": "M70-99812",
        "items.1.serial_status": "present",
        "items.1.quantity": "1",
        "items.1.unit": "pieces",
        "details.seizure_place": "Busia",
        "handling.tlp": "amber",
        "handling.audience": "recipients",
    }
    if recipient:
        form["handling.recipient_agencies"] = [recipient]
    form.update(extra)
    return form
