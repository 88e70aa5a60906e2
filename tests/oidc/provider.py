"""A real OpenID Connect provider for the single sign-on tests, and a browser's walk through
its login and consent pages.

The provider is the npm package `oidc-provider` (version pinned in package.json) run by
`provider.mjs` on a free port of 127.0.0.1, stopped when the test ends. Its tests are
skipped, with the reason, when `node` or the package is missing, unless
TRACEWIRE_REQUIRE_OIDC=1 (CI), where that is a failure. Install it with
`npm install --no-package-lock` in tests/oidc (scripts/test.sh does).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.processes import free_port
from tests.secrets_seen import remember

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "provider.mjs"
PACKAGE = HERE / "node_modules" / "oidc-provider" / "package.json"
CALLBACK = "http://testserver/console/login/sso/callback"
FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.IGNORECASE)
REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)">')


def need_provider() -> str:
    """The `node` binary, or skip (fail under TRACEWIRE_REQUIRE_OIDC=1) saying what is missing."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not on PATH (install Node.js 20 or later)"
    elif not PACKAGE.exists():
        reason = (
            "the oidc-provider package is missing (cd tests/oidc && npm install --no-package-lock)"
        )
    if reason is None:
        assert node is not None
        return node
    if os.environ.get("TRACEWIRE_REQUIRE_OIDC") == "1":
        pytest.fail(f"OpenID Connect tests are required here, but {reason}")
    pytest.skip(f"OpenID Connect tests skipped: {reason}")


@dataclass
class Provider:
    """A running provider: its issuer, its clients' secrets, and its accounts (editable)."""

    issuer: str
    port: int
    config_file: Path
    config: dict = field(default_factory=dict)

    def secret(self, client_id: str) -> str:
        """The client secret of `client_id`."""
        return next(
            c["client_secret"] for c in self.config["clients"] if c["client_id"] == client_id
        )

    def add_account(self, account_id: str, **claims: object) -> None:
        """An account at the provider (read again at each look-up)."""
        self.config["accounts"][account_id] = claims
        self.config_file.write_text(json.dumps(self.config))


def _client(client_id: str, redirect_uri: str) -> dict:
    secret = secrets.token_urlsafe(32)
    remember(secret)
    return {
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }


@contextlib.contextmanager
def running(tmp_path: Path, *, id_token_ttl: int = 3600) -> Iterator[Provider]:
    """Start the provider with two clients (`tracewire`, and `other` for tokens meant for
    someone else) on a free port; stop it at the end."""
    node = need_provider()
    port = free_port()
    config = {
        "clients": [
            _client("tracewire", CALLBACK),
            _client("other", "http://127.0.0.1:9/other/callback"),
        ],
        "accounts": {},
        "id_token_ttl": id_token_ttl,
    }
    config_file = tmp_path / "oidc-provider.json"
    config_file.write_text(json.dumps(config))
    log = (tmp_path / "oidc-provider.log").open("w")
    process = subprocess.Popen(
        [node, str(SCRIPT), str(port), str(config_file)],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        line = process.stdout.readline()  # "ready", or "" when it died
        assert line.strip() == "ready", (tmp_path / "oidc-provider.log").read_text()
        assert time.monotonic() < deadline
        yield Provider(f"http://127.0.0.1:{port}", port, config_file, config)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def refresh_target(page: str) -> str:
    """Where a console page that moves on by itself (meta refresh) goes."""
    found = REFRESH.search(page)
    assert found, page
    return html.unescape(found.group(1))


async def through_provider(
    http: httpx.AsyncClient, authorize_url: str, account_id: str, *, stop_at: str
) -> str:
    """Follow the provider's pages as a browser would: its login form (as `account_id`, any
    password) and its consent form, until it redirects to `stop_at`; that URL."""
    url, method, data = authorize_url, "GET", None
    for _ in range(12):
        answer = await http.request(method, url, data=data, follow_redirects=False)
        if answer.is_redirect:
            url = str(answer.url.join(answer.headers["location"]))
            method, data = "GET", None
            if url.startswith(stop_at):
                return url
            continue
        assert answer.status_code == 200, answer.text
        action = FORM_ACTION.search(answer.text)
        assert action, answer.text
        url = str(answer.url.join(html.unescape(action.group(1))))
        method = "POST"
        if 'name="prompt" value="login"' in answer.text:
            data = {"prompt": "login", "login": account_id, "password": "any password"}
        else:
            data = {"prompt": "consent"}
    raise AssertionError("the provider never sent the browser back")


@dataclass(frozen=True)
class IssuedTokens:
    """Tokens the provider issued to a client the test plays itself."""

    id_token: str
    access_token: str | None
    nonce: str


async def tokens_for(provider: Provider, client_id: str, account_id: str) -> IssuedTokens:
    """Play client `client_id` through a whole code flow; the tokens the provider issues."""
    redirect = next(c for c in provider.config["clients"] if c["client_id"] == client_id)[
        "redirect_uris"
    ][0]
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "scope": "openid email profile",
            "state": "s",
            "nonce": nonce,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
    )
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        back = await through_provider(
            http, f"{provider.issuer}/auth?{query}", account_id, stop_at=redirect
        )
        code = parse_qs(urlsplit(back).query)["code"][0]
        answer = await http.post(
            f"{provider.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
            auth=(client_id, provider.secret(client_id)),
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    remember(code, body["id_token"], body.get("access_token"))
    return IssuedTokens(body["id_token"], body.get("access_token"), nonce)
