"""Security headers, client address, CORS, rate limits and JSON shape caps.

Most tests drive a small FastAPI app wearing the same middleware as the real one; the
last ones go through `create_app()` (on both backends). Every test calls
`install_hardening()` itself, which replaces any set `create_app()` already installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlmodel import func, select
from starlette.middleware.cors import CORSMiddleware

from app.agencies.models import Agency
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.docs import install_docs
from app.core.errors import UnexpectedErrorMiddleware, install_error_handlers
from app.core.hardening import (
    API_CSP,
    HSTS,
    ClientAddressMiddleware,
    JsonShapeMiddleware,
    RateLimiter,
    RateLimitMiddleware,
    SecurityHeadersMiddleware,
    install_hardening,
)
from app.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from tests.factories import bearer, make_agency, make_user, password_login

PROBLEM = "application/problem+json"
PROXY = "10.1.2.3"  # inside the trusted 10.0.0.0/8
STRANGER = "203.0.113.5"
FIXED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
OPTIONS: dict[str, Any] = {
    "trusted_proxies": ["10.0.0.0/8", "fd00::/8"],
    "cors_origins": [],
    "rate_per_minute": 1000,
    "token_rate_per_minute": 1000,
}


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def small_app(*, max_bytes: int = 1024 * 1024, **options: Any) -> FastAPI:
    """A few routes behind the same middleware as the real app."""
    app = FastAPI(docs_url=None, redoc_url=None)
    install_error_handlers(app)
    install_docs(app)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/v1/ping")
    async def ping() -> dict:
        return {"ok": True}

    @app.get("/api/v1/cached")
    async def cached() -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"Cache-Control": "max-age=60"})

    @app.get("/api/v1/whoami")
    async def whoami(request: Request) -> dict:
        return {"ip": request.state.client_ip, "scheme": request.state.client_scheme}

    @app.get("/api/v1/private")
    async def private(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != "Bearer good":
            return JSONResponse({"detail": "no"}, status_code=401)
        return JSONResponse({"ok": True})

    @app.post("/api/v1/echo")
    async def echo(body: Annotated[Any, Body()]) -> dict:
        return {"received": body}

    @app.post("/api/v1/raw")
    async def raw(request: Request) -> dict:
        return {"length": len(await request.body())}

    @app.post("/api/v1/auth/token")
    async def token() -> dict:
        return {"access_token": "t"}

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes)
    app.add_middleware(RequestContextMiddleware)
    install_hardening(app, **{**OPTIONS, **options})
    return app


@asynccontextmanager
async def talk(
    app: FastAPI, *, peer: str = STRANGER, base: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        yield client


def directives(csp: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in csp.split("; ")}


def inline_script_hashes(page: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in re.findall(r"<script>(.*?)</script>", page, re.S)
    ]


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# --- security headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/v1/ping", 200), ("GET", "/nowhere", 404), ("POST", "/api/v1/ping", 405)],
)
async def test_every_answer_carries_the_fixed_headers(method, path, status):
    async with talk(small_app()) as client:
        answer = await client.request(method, path)
    assert answer.status_code == status
    for name, value in FIXED.items():
        assert answer.headers[name] == value
    assert answer.headers["content-security-policy"] == API_CSP
    assert "strict-transport-security" not in answer.headers
    assert "cache-control" not in answer.headers


@pytest.mark.parametrize(
    ("base", "peer", "proto", "hsts"),
    [
        ("http://testserver", STRANGER, None, False),
        ("https://testserver", STRANGER, None, True),
        ("http://testserver", PROXY, "https", True),
        ("http://testserver", PROXY, "http", False),
        ("http://testserver", PROXY, "http, https", True),  # the nearest proxy's word
        ("http://testserver", STRANGER, "https", False),  # anyone can send the header
    ],
)
async def test_hsts_only_over_tls(base, peer, proto, hsts):
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    async with talk(small_app(), peer=peer, base=base) as client:
        answer = await client.get("/api/v1/ping", headers=headers)
    assert answer.headers.get("strict-transport-security") == (HSTS if hsts else None)


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/api/v1/ping", {"Authorization": "Bearer abc"}, "no-store"),
        ("/api/v1/ping", {"Authorization": "Basic eDp5"}, "no-store"),
        ("/api/v1/ping", {}, None),
        ("/api/v1/cached", {"Authorization": "Bearer abc"}, "max-age=60"),  # the app's choice
        ("/api/v1/auth/token", {}, "no-store"),
    ],
)
async def test_cache_control_no_store_on_authenticated_answers(path, headers, expected):
    async with talk(small_app()) as client:
        if path.endswith("/token"):
            answer = await client.post(path, headers=headers)
        else:
            answer = await client.get(path, headers=headers)
    assert answer.status_code == 200
    assert answer.headers.get("cache-control") == expected


async def test_docs_pages_render_with_their_own_strict_csp():
    async with talk(small_app()) as client:
        docs = await client.get("/docs")
        redoc = await client.get("/redoc")
        api = await client.get("/openapi.json")
    assert docs.status_code == redoc.status_code == api.status_code == 200
    assert api.headers["content-security-policy"] == API_CSP
    for page in (docs, redoc):
        csp = page.headers["content-security-policy"]
        assert csp != API_CSP
        policy = directives(csp)
        assert policy["default-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in policy["script-src"]
        assert "'unsafe-eval'" not in policy["script-src"]
        assert policy["connect-src"] == ["'self'"]
        # The page's scripts come from the app itself, and exactly its inline ones run.
        assert policy["script-src"][0] == "'self'"
        for src in re.findall(r'<script src="([^"]+)"', page.text):
            assert src.startswith("/docs/assets/")
        assert sorted(inline_script_hashes(page.text)) == sorted(
            s for s in policy["script-src"] if s.startswith("'sha256-")
        )
        assert page.headers["x-frame-options"] == "DENY"
    assert inline_script_hashes(docs.text)  # Swagger UI boots from an inline script
    assert "blob:" in directives(redoc.headers["content-security-policy"])["worker-src"]


# --- client address ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        (STRANGER, None, STRANGER),
        (STRANGER, "198.51.100.7", STRANGER),  # spoofed by an untrusted peer: ignored
        (PROXY, None, PROXY),
        (PROXY, "198.51.100.7", "198.51.100.7"),
        (PROXY, "1.1.1.1, 198.51.100.7, 10.9.9.9", "198.51.100.7"),  # right-most untrusted
        (PROXY, "10.2.2.2, 10.3.3.3", "10.2.2.2"),  # all trusted: the left-most
        (PROXY, "198.51.100.7, not-an-ip", PROXY),  # unreadable hop: stop at the proxy
        (PROXY, "198.51.100.7:5555", "198.51.100.7"),
        (PROXY, "[2001:db8::1]:443", "2001:db8::1"),
        ("fd00::5", "198.51.100.7", "198.51.100.7"),
        ("::ffff:203.0.113.5", "198.51.100.7", STRANGER),
    ],
)
async def test_client_address_trusts_forwarded_for_only_from_proxies(peer, forwarded, expected):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with talk(small_app(), peer=peer) as client:
        answer = await client.get("/api/v1/whoami", headers=headers)
    assert answer.json()["ip"] == expected


async def test_several_forwarded_for_headers_read_as_one_list():
    async with talk(small_app(), peer=PROXY) as client:
        answer = await client.get(
            "/api/v1/whoami",
            headers=[("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-For", "10.4.4.4")],
        )
    assert answer.json()["ip"] == "198.51.100.7"


# --- CORS -------------------------------------------------------------------------------


async def test_cors_is_off_by_default():
    origin = {"Origin": "https://console.example.org"}
    async with talk(small_app()) as client:
        simple = await client.get("/api/v1/ping", headers=origin)
        preflight = await client.options(
            "/api/v1/ping", headers={**origin, "Access-Control-Request-Method": "GET"}
        )
    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_answers_only_the_configured_origin():
    app = small_app(cors_origins=["https://console.example.org"])
    preflight_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with talk(app) as client:
        ours = await client.get("/api/v1/ping", headers={"Origin": "https://console.example.org"})
        theirs = await client.get("/api/v1/ping", headers={"Origin": "https://evil.example"})
        preflight = await client.options(
            "/api/v1/echo", headers={"Origin": "https://console.example.org", **preflight_headers}
        )
        bad_preflight = await client.options(
            "/api/v1/echo", headers={"Origin": "https://evil.example", **preflight_headers}
        )
    assert ours.headers["access-control-allow-origin"] == "https://console.example.org"
    assert "access-control-allow-credentials" not in ours.headers
    assert "access-control-allow-origin" not in theirs.headers
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://console.example.org"
    assert "access-control-allow-origin" not in bad_preflight.headers


@pytest.mark.parametrize("origin", ["*", "https://console.example.org/", "console.example.org"])
def test_cors_refuses_wildcards_and_malformed_origins(origin):
    with pytest.raises(ValueError, match="CORS origin"):
        small_app(cors_origins=[origin])


# --- rate limits ------------------------------------------------------------------------


async def test_rate_limit_answers_429_then_recovers_with_time():
    clock = FakeClock()
    app = small_app(rate_per_minute=3, clock=clock)
    async with talk(app) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/ping")).status_code == 200
        refused = await client.get("/api/v1/ping")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert refused.headers["retry-after"] == "20"  # one request per 20 s
        assert refused.json()["type"].endswith("rate-limited")
        assert refused.headers["x-frame-options"] == "DENY"
        assert "x-request-id" in refused.headers
        clock.advance(19)
        assert (await client.get("/api/v1/ping")).headers["retry-after"] == "1"
        clock.advance(1)
        assert (await client.get("/api/v1/ping")).status_code == 200
        assert (await client.get("/api/v1/ping")).status_code == 429
        assert (await client.get("/healthz")).status_code == 200  # probes are exempt


async def test_buckets_are_per_address_and_per_token():
    app = small_app(rate_per_minute=2, clock=FakeClock())
    async with talk(app, peer="198.51.100.1") as a, talk(app, peer="198.51.100.2") as b:
        assert [(await a.get("/api/v1/ping")).status_code for _ in range(3)] == [200, 200, 429]
        assert (await b.get("/api/v1/ping")).status_code == 200
        # A bearer token has its own bucket, wherever it comes from.
        token = bearer("good")
        assert (await a.get("/api/v1/private", headers=token)).status_code == 200
        assert (await b.get("/api/v1/private", headers=token)).status_code == 200
        assert (await b.get("/api/v1/private", headers=token)).status_code == 429


async def test_forwarded_client_is_the_rate_limit_key():
    app = small_app(rate_per_minute=1, clock=FakeClock())
    async with talk(app, peer=PROXY) as proxy, talk(app, peer=STRANGER) as spoofer:
        one = {"X-Forwarded-For": "198.51.100.1"}
        two = {"X-Forwarded-For": "198.51.100.2"}
        assert (await proxy.get("/api/v1/ping", headers=one)).status_code == 200
        assert (await proxy.get("/api/v1/ping", headers=two)).status_code == 200
        assert (await proxy.get("/api/v1/ping", headers=one)).status_code == 429
        # Rotating a spoofed header from an untrusted peer buys nothing.
        assert (await spoofer.get("/api/v1/ping", headers=one)).status_code == 200
        assert (await spoofer.get("/api/v1/ping", headers=two)).status_code == 429


async def test_invented_bearer_tokens_do_not_escape_the_limit():
    app = small_app(rate_per_minute=3, clock=FakeClock())
    async with talk(app) as client:
        for n in range(3):
            answer = await client.get("/api/v1/private", headers=bearer(f"made-up-{n}"))
            assert answer.status_code == 401
        assert (await client.get("/api/v1/private", headers=bearer("fresh"))).status_code == 429
        assert (await client.get("/api/v1/ping")).status_code == 200  # anonymous budget intact


async def test_token_endpoint_has_a_stricter_budget():
    app = small_app(rate_per_minute=1000, token_rate_per_minute=2, clock=FakeClock())
    async with talk(app) as client:
        assert [(await client.post("/api/v1/auth/token")).status_code for _ in range(2)] == [
            200,
            200,
        ]
        refused = await client.post("/api/v1/auth/token", headers=bearer("anything"))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"
        assert (await client.get("/api/v1/ping")).status_code == 200


async def test_rate_zero_turns_limiting_off():
    app = small_app(rate_per_minute=0, token_rate_per_minute=0, clock=FakeClock())
    async with talk(app) as client:
        for _ in range(50):
            assert (await client.post("/api/v1/auth/token")).status_code == 200


def test_limiter_memory_is_bounded_and_evicts_the_idlest():
    clock = FakeClock()
    limiter = RateLimiter(60, burst=1, clock=clock, max_keys=3)
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") == pytest.approx(1.0)
    for key in ("b", "c", "d"):
        limiter.acquire(key)
    assert len(limiter) == 3
    assert limiter.acquire("a") == 0  # evicted, so back with a full bucket
    assert limiter.wait_time("d") == pytest.approx(1.0)
    clock.advance(1)
    assert limiter.wait_time("d") == 0


# --- JSON shape -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (nested(33), "json_too_deep"),
        (nested(100), "json_too_deep"),
        ({"a": {"b": nested(40)}}, "json_too_deep"),
        ([0] * 10_001, "json_array_too_long"),
        ({"items": [{"tags": list(range(10_001))}]}, "json_array_too_long"),
    ],
)
async def test_json_too_deep_or_too_long_is_refused(body, kind):
    async with talk(small_app()) as client:
        answer = await client.post("/api/v1/echo", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["x-content-type-options"] == "nosniff"
    problem = answer.json()
    assert problem["type"].endswith("validation-error")
    [error] = problem["errors"]
    assert (error["field"], error["type"]) == ("body", kind)


async def test_json_nested_past_the_parser_limit_is_refused():
    content = b"[" * 100_000 + b"]" * 100_000
    async with talk(small_app()) as client:
        answer = await client.post(
            "/api/v1/echo", content=content, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["type"] == "json_too_deep"


@pytest.mark.parametrize(
    "body",
    [nested(32), [0] * 10_000, {"a": "[" * 500}, {"name": "ok", "tags": ["x", "y"]}],
)
async def test_json_within_the_caps_reaches_the_app_intact(body):
    async with talk(small_app()) as client:
        answer = await client.post("/api/v1/echo", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": body}


async def test_json_shape_applies_to_json_media_types_only():
    deep = json.dumps(nested(100)).encode()
    async with talk(small_app()) as client:
        plain = await client.post(
            "/api/v1/raw", content=deep, headers={"Content-Type": "text/plain"}
        )
        patch = await client.post(
            "/api/v1/raw",
            content=deep,
            headers={"Content-Type": "application/merge-patch+json; charset=utf-8"},
        )
        malformed = await client.post(
            "/api/v1/echo", content=b"[" * 40, headers={"Content-Type": "application/json"}
        )
    assert plain.json() == {"length": len(deep)}
    assert patch.status_code == 422
    assert malformed.status_code == 400  # the app's own malformed-JSON answer
    assert malformed.json()["type"].endswith("malformed-json")


async def test_streamed_json_over_the_size_cap_is_still_413():
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"[" * 1024

    async with talk(small_app(max_bytes=4096)) as client:
        answer = await client.post(
            "/api/v1/echo", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["x-frame-options"] == "DENY"


# --- installation -----------------------------------------------------------------------


def test_install_places_each_middleware_and_a_second_call_replaces_the_first():
    app = small_app()
    install_hardening(app, **{**OPTIONS, "cors_origins": ["https://console.example.org"]})
    assert [m.cls for m in app.user_middleware] == [
        ClientAddressMiddleware,
        RequestContextMiddleware,
        SecurityHeadersMiddleware,
        CORSMiddleware,
        RateLimitMiddleware,
        BodySizeLimitMiddleware,
        JsonShapeMiddleware,
        UnexpectedErrorMiddleware,
    ]
    install_hardening(app, **OPTIONS)
    assert CORSMiddleware not in [m.cls for m in app.user_middleware]
    assert len(app.user_middleware) == 7


async def test_install_after_the_first_request_is_refused():
    app = small_app()
    async with talk(app) as client:
        await client.get("/api/v1/ping")
    with pytest.raises(RuntimeError):
        install_hardening(app, **OPTIONS)


# --- through the real app ---------------------------------------------------------------

GOOD = {"name": "Border Police", "country": "FR", "type": "police"}


@pytest.fixture
def hardened(app):
    install_hardening(app, **{**OPTIONS, "rate_per_minute": 100_000})
    return app


@pytest.fixture
async def admin_headers(hardened, client, db):
    operator = await make_agency(db, country="XX")
    admin = await make_user(db, hardened.state.auth.hashing, operator, Role.platform_admin)
    return bearer((await password_login(client, admin.email))["access_token"])


async def _agency_count(db) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(Agency))).one()


async def test_real_app_headers_and_docs(hardened, client):
    health = await client.get("/healthz")
    assert health.headers["content-security-policy"] == API_CSP
    assert {name: health.headers[name] for name in FIXED} == FIXED
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert csp != API_CSP
        assert set(inline_script_hashes(page.text)) <= set(directives(csp)["script-src"])
    spec = await client.get("/openapi.json")
    assert spec.headers["content-security-policy"] == API_CSP


async def test_real_app_authenticated_answers_are_not_stored(client, admin_headers):
    listed = await client.get("/api/v1/agencies", headers=admin_headers)
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    assert "cache-control" not in (await client.get("/healthz")).headers


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ({"contact": nested(100)}, "json_too_deep"),
        ({"aliases": ["x"] * 10_001}, "json_array_too_long"),
    ],
)
async def test_real_app_refuses_bad_json_shapes_and_stores_nothing(
    client, db, admin_headers, extra, kind
):
    before = await _agency_count(db)
    answer = await client.post("/api/v1/agencies", json={**GOOD, **extra}, headers=admin_headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert [(e["field"], e["type"]) for e in answer.json()["errors"]] == [("body", kind)]
    assert await _agency_count(db) == before
    good = await client.post("/api/v1/agencies", json=GOOD, headers=admin_headers)
    assert good.status_code == 201, good.text
    assert await _agency_count(db) == before + 1


async def test_real_app_audits_the_forwarded_client_address(hardened, db):
    agency = await make_agency(db)
    user = await make_user(db, hardened.state.auth.hashing, agency, Role.reader)
    forwarded = {"X-Forwarded-For": "1.1.1.1, 198.51.100.7"}
    async with talk(hardened, peer=PROXY) as proxy, talk(hardened, peer=STRANGER) as spoofer:
        await proxy.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": user.email, "password": "wrong-password"},
            headers=forwarded,
        )
        await spoofer.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": user.email, "password": "wrong-password"},
            headers=forwarded,
        )
    async with db.session() as session:
        rows = await session.exec(
            select(AuditRecord.client_ip)
            .where(AuditRecord.action == "auth.login")
            .order_by(AuditRecord.seq)
        )
        assert list(rows) == ["198.51.100.7", STRANGER]


async def test_real_app_token_endpoint_is_rate_limited(app, client, db):
    install_hardening(app, **{**OPTIONS, "token_rate_per_minute": 2, "clock": FakeClock()})
    agency = await make_agency(db)
    user = await make_user(db, app.state.auth.hashing, agency, Role.reader)
    for _ in range(2):
        await password_login(client, user.email)
    refused = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user.email, "password": "whatever"},
    )
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["content-type"] == PROBLEM
    assert (await client.get("/healthz")).status_code == 200
