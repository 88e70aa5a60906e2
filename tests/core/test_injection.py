"""Hostile strings are data: stored as given, never executed, never echoed unescaped."""

from __future__ import annotations

import pytest

from app.authz.principal import Role
from tests.factories import make_actor, make_agency, post_alert, seizure_body

HOSTILE = [
    "'; DROP TABLE alert; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "{{7*7}} ${7*7} %s %n",
    "../../etc/passwd",
    "Robert'); DELETE FROM audit_record;--",
]


@pytest.fixture
async def focal(client, db, app):
    return await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db), Role.focal_point
    )


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_text_is_stored_verbatim_and_filters_stay_data(client, focal, hostile):
    body = seizure_body(title=f"T {hostile}", summary=hostile, tags=[hostile[:50].strip() or "x"])
    body["items"][0]["model"] = hostile[:100]
    alert = await post_alert(client, focal, body)
    assert alert["summary"] == hostile
    got = await client.get(f"/api/v1/alerts/{alert['id']}", headers=focal.headers)
    # JSON, never HTML, and the browser is told not to sniff it into something else.
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.json()["summary"] == hostile
    for name in ("q", "tag", "serial"):
        answer = await client.get(
            "/api/v1/alerts", params={name: hostile[:60]}, headers=focal.headers
        )
        assert answer.status_code in (200, 422), (name, answer.text)
    # The tables are all still there and the alert with them.
    listed = await client.get("/api/v1/alerts", headers=focal.headers)
    assert [a["id"] for a in listed.json()["items"]] == [alert["id"]]


@pytest.mark.parametrize("bad", ["bell\u0007", "nul\u0000", "esc\u001b[31m", "del\u007f"])
async def test_control_characters_are_refused_and_nothing_stored(client, focal, bad):
    answer = await client.post(
        "/api/v1/alerts", json=seizure_body(title=bad), headers=focal.headers
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/alerts", headers=focal.headers)).json()["items"] == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
async def test_wrong_content_type_is_a_problem(client, focal, content_type):
    import json

    answer = await client.post(
        "/api/v1/alerts",
        content=json.dumps(seizure_body()).encode(),
        headers={**focal.headers, "Content-Type": content_type},
    )
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/alerts", headers=focal.headers)).json()["items"] == []
