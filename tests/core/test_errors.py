"""Bad input of every kind: a 4xx problem naming the field, and nothing stored."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from sqlmodel import func, select

from app.agencies.models import Agency
from app.authz.principal import Role
from app.core.errors import FieldError, InvalidInput, render_error
from tests.core.failing_serve import add_failing_routes
from tests.factories import bearer, make_agency, make_user, password_login
from tests.live import serve

PROBLEM = "application/problem+json"


@pytest.fixture
async def admin_headers(client, db, app):
    operator = await make_agency(db, country="XX")
    admin = await make_user(db, app.state.auth.hashing, operator, Role.platform_admin)
    return bearer((await password_login(client, admin.email))["access_token"])


async def _agency_count(db) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(Agency))).one()


GOOD = {"name": "Border Police", "country": "FR", "type": "police"}


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"country": "FR", "type": "police"}, "body.name", 422),
        ({**GOOD, "name": 42}, "body.name", 422),
        ({**GOOD, "country": "QQ"}, "body.country", 422),
        ({**GOOD, "country": "fr"}, "body.country", 422),
        ({**GOOD, "country": "FRA"}, "body.country", 422),
        ({**GOOD, "type": "navy"}, "body.type", 422),
        ({**GOOD, "name": "x" * 201}, "body.name", 422),
        ({**GOOD, "name": ""}, "body.name", 422),
        ({**GOOD, "name": "bad\u0000name"}, "body.name", 422),
        ({**GOOD, "contact_email": "not-an-email"}, "body.contact_email", 422),
        ({**GOOD, "surprise": True}, "body.surprise", 422),
        ([GOOD], "body", 422),
    ],
)
async def test_invalid_fields_name_the_field(client, db, admin_headers, body, field, status):
    before = await _agency_count(db)
    answer = await client.post("/api/v1/agencies", json=body, headers=admin_headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == status
    assert problem["type"].endswith("validation-error")
    assert field in [e["field"] for e in problem["errors"]]
    assert await _agency_count(db) == before


async def test_international_code_is_for_agencies(client, admin_headers):
    answer = await client.post(
        "/api/v1/agencies", json={**GOOD, "country": "XX"}, headers=admin_headers
    )
    assert answer.status_code == 201


async def test_text_is_stored_as_nfc(client, admin_headers):
    decomposed = "Polici\u0301a Nacional"  # i + combining acute accent
    answer = await client.post(
        "/api/v1/agencies", json={**GOOD, "name": decomposed}, headers=admin_headers
    )
    assert answer.status_code == 201
    assert answer.json()["name"] == "Polic\u00eda Nacional"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "slug"),
    [
        (b'{"name": "x", ', "application/json", 400, "malformed-json"),
        (b"\xff\xfe\x00not utf-8 at all", "application/json", 400, "bad-request"),
        (b"name=x", "application/x-www-form-urlencoded", 422, "validation-error"),
    ],
)
async def test_undecodable_bodies(client, db, admin_headers, content, content_type, status, slug):
    before = await _agency_count(db)
    answer = await client.post(
        "/api/v1/agencies",
        content=content,
        headers={**admin_headers, "Content-Type": content_type},
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith(slug)
    assert await _agency_count(db) == before


async def test_two_megabyte_body_is_refused(client, db, admin_headers):
    before = await _agency_count(db)
    body = json.dumps({**GOOD, "name": "x" * (2 * 1024 * 1024)}).encode()
    answer = await client.post(
        "/api/v1/agencies",
        content=body,
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == PROBLEM
    assert await _agency_count(db) == before


async def test_streamed_body_without_length_is_capped(client, db, admin_headers):
    async def chunks():
        for _ in range(40):
            yield b"x" * 65536

    before = await _agency_count(db)
    answer = await client.post(
        "/api/v1/agencies",
        content=chunks(),
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == PROBLEM
    assert await _agency_count(db) == before


async def test_unknown_route_and_wrong_method_are_problems(client, admin_headers):
    missing = await client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    wrong = await client.put("/api/v1/agencies", json={}, headers=admin_headers)
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == PROBLEM
    assert "allow" in {k.lower() for k in wrong.headers}


async def test_bad_path_and_query_parameters(client, admin_headers):
    bad_id = await client.get("/api/v1/agencies/not-a-uuid", headers=admin_headers)
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0]["field"] == "path.agency_id"
    bad_limit = await client.get("/api/v1/agencies?limit=100000", headers=admin_headers)
    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["field"] == "query.limit"
    bad_cursor = await client.get("/api/v1/agencies?cursor=%%%", headers=admin_headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "query.cursor"


async def test_password_never_echoed_in_errors(client, db, app):
    agency = await make_agency(db)
    # The agency's own administrator: a platform admin creates no users elsewhere.
    own_admin = await make_user(db, app.state.auth.hashing, agency, Role.agency_admin)
    admin_headers = bearer((await password_login(client, own_admin.email))["access_token"])
    secret_password = "short-Secret1"[:11]
    answer = await client.post(
        f"/api/v1/agencies/{agency.id}/users",
        json={
            "email": "person@tracewire.example",
            "full_name": "P",
            "password": secret_password,
        },
        headers=admin_headers,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.password"
    assert secret_password not in answer.text


# --- an unexpected error: a clean 500, and the connection stays usable --------------------

TAXII = "application/taxii+json;version=2.1"


async def test_unexpected_error_is_a_500_problem_in_process(app, client):
    add_failing_routes(app)
    api = await client.get("/api/v1/test-only/fail", headers={"X-Request-ID": "req-fail-1"})
    assert api.status_code == 500
    assert api.headers["content-type"] == PROBLEM
    assert api.headers["x-request-id"] == "req-fail-1"
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.json()["type"].endswith("internal-error")
    assert api.json()["request_id"] == "req-fail-1"
    assert "forced" not in api.text  # no exception text in the answer
    console = await client.get("/console/test-only/fail")
    assert console.status_code == 500
    assert console.headers["content-type"].startswith("text/html")
    assert console.headers["content-security-policy"].startswith("default-src 'none'")
    taxii = await client.get("/taxii2/test-only/fail")
    assert taxii.status_code == 500
    assert taxii.headers["content-type"] == TAXII
    assert taxii.json()["http_status"] == "500"


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request and its answer on an open keep-alive connection."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines if line)
    }
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return int(status_line.split()[1]), headers, body


async def test_unexpected_error_keeps_the_connection_of_a_real_server(db_url, tmp_path):
    async with serve(db_url, tmp_path, module="tests.core.failing_serve") as base:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for path, media in (
                ("/api/v1/test-only/fail", PROBLEM),
                ("/console/test-only/fail", "text/html; charset=utf-8"),
                ("/taxii2/test-only/fail", TAXII),
            ):
                status, headers, body = await _exchange(reader, writer, path)
                assert status == 500, body
                assert headers["content-type"] == media
                assert headers.get("connection", "keep-alive") != "close"
                # The same connection answers the next request.
                status, _, body = await _exchange(reader, writer, "/healthz")
                assert status == 200, body
                assert json.loads(body)["status"] == "ok"
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def test_a_domain_field_is_named_by_its_place_in_the_request_only_in_the_answer():
    body = InvalidInput.on("details.addressed_to", "no agency")
    assert [e.field for e in body.field_errors or []] == ["details.addressed_to"]
    assert [e.field for e in body.errors or []] == ["body.details.addressed_to"]
    query = InvalidInput.on("cursor", "not a cursor", location="query")
    assert [e.field for e in query.errors or []] == ["query.cursor"]
    raw = InvalidInput("x", errors=[FieldError(field="body", message="too deep")])
    assert [e.field for e in raw.errors or []] == ["body"]
    answer = json.loads(render_error(body).body)
    assert answer["errors"] == [
        {"field": "body.details.addressed_to", "message": "no agency", "type": "invalid"}
    ]
