"""Alerts through the API: post, read, change with If-Match, publish, withdraw, query."""

from __future__ import annotations

import asyncio

import pytest

from app.authz.principal import Role
from tests.factories import Actor, make_actor, make_agency, post_alert, seizure_body


@pytest.fixture
async def ke(client, db, app) -> Actor:
    return await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db, country="KE"), Role.focal_point
    )


@pytest.fixture
async def co(client, db, app) -> Actor:
    return await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db, country="CO"), Role.focal_point
    )


async def test_post_and_read_a_seizure(client, ke, co):
    alert = await post_alert(client, ke, seizure_body())
    assert alert["status"] == "published"
    assert alert["version"] == 1
    assert [i["serial_key"] for i in alert["items"]] == ["AK471234", "M7099812"]
    assert alert["handling"]["recipient_agencies"] == []
    other = await client.get(f"/api/v1/alerts/{alert['id']}", headers=co.headers)
    assert other.status_code == 200
    assert other.headers["etag"] == '"1"'
    assert other.json()["handling"]["recipient_agencies"] is None  # originator only
    assert other.json()["items"][0]["markings"][0]["script"] == "Cyrl"


async def test_draft_is_the_originators_only(client, ke, co):
    draft = await post_alert(client, ke, seizure_body(), publish=False)
    assert draft["status"] == "draft"
    assert (
        await client.get(f"/api/v1/alerts/{draft['id']}", headers=co.headers)
    ).status_code == 404
    published = await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=ke.headers)
    assert published.status_code == 200
    assert published.json()["version"] == 2
    assert (
        await client.get(f"/api/v1/alerts/{draft['id']}", headers=co.headers)
    ).status_code == 200
    again = await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=ke.headers)
    assert again.status_code == 409


async def test_patch_needs_current_version(client, ke, co):
    alert = await post_alert(client, ke, seizure_body())
    url = f"/api/v1/alerts/{alert['id']}"
    missing = await client.patch(url, json={"title": "New title"}, headers=ke.headers)
    assert missing.status_code == 428
    ok = await client.patch(
        url, json={"title": "New title"}, headers={**ke.headers, "If-Match": '"1"'}
    )
    assert ok.status_code == 200
    assert ok.json()["version"] == 2
    assert ok.headers["etag"] == '"2"'
    stale = await client.patch(
        url, json={"title": "Lost update"}, headers={**ke.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert (await client.get(url, headers=ke.headers)).json()["title"] == "New title"
    not_mine = await client.patch(
        url, json={"title": "x"}, headers={**co.headers, "If-Match": '"2"'}
    )
    assert not_mine.status_code == 403


async def test_patch_items_and_details(client, ke):
    alert = await post_alert(client, ke, seizure_body())
    url = f"/api/v1/alerts/{alert['id']}"
    changed = await client.patch(
        url,
        json={
            "items": [
                {"category": "ammunition", "lot": "LOT-77", "quantity": 500, "unit": "rounds"}
            ],
            "details": {"custody_reference": "KE/2026/77"},
        },
        headers={**ke.headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert [i["lot"] for i in body["items"]] == ["LOT-77"]
    assert body["items"][0]["serial_key"] is None
    assert body["details"]["custody_reference"] == "KE/2026/77"
    bad = await client.patch(
        url, json={"details": {"illicit_basis": ["bad"]}}, headers={**ke.headers, "If-Match": '"2"'}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.details.illicit_basis.0"


async def test_withdraw_leaves_a_tombstone(client, ke, co):
    alert = await post_alert(client, ke, seizure_body())
    url = f"/api/v1/alerts/{alert['id']}"
    no_reason = await client.post(f"{url}/withdraw", json={}, headers=ke.headers)
    assert no_reason.status_code == 422
    done = await client.post(
        f"{url}/withdraw", json={"reason": "Duplicate of an earlier alert"}, headers=ke.headers
    )
    assert done.status_code == 200
    seen = (await client.get(url, headers=co.headers)).json()
    assert seen["tombstone"] is True
    assert seen["withdrawal_reason"] == "Duplicate of an earlier alert"
    assert seen["title"] is None and seen["items"] is None
    own = (await client.get(url, headers=ke.headers)).json()
    assert own["tombstone"] is False and own["title"]
    edit = await client.patch(url, json={"title": "x"}, headers={**ke.headers, "If-Match": '"2"'})
    assert edit.status_code == 409


async def test_list_filters(client, ke, co):
    a = await post_alert(client, ke, seizure_body(tags=["border"]))
    b = await post_alert(
        client,
        ke,
        seizure_body(
            title="Drone parts ordered by a front company",
            country="UG",
            tags=["uas"],
            items=[{"category": "uas_component", "make": "DJI", "serial_raw": "0JX-7788"}],
        ),
    )

    async def ids(query: str) -> list[str]:
        answer = await client.get(f"/api/v1/alerts?{query}", headers=co.headers)
        assert answer.status_code == 200, answer.text
        return [x["id"] for x in answer.json()["items"]]

    assert await ids("") == [b["id"], a["id"]]  # newest first
    assert await ids("country=UG") == [b["id"]]
    assert await ids("tag=border") == [a["id"]]
    assert await ids("serial=ak%20471234") == [a["id"]]
    assert await ids("serial=0jx7788") == [b["id"]]
    assert await ids("q=drone") == [b["id"]]
    assert await ids("q=zastava") == [a["id"]]
    assert await ids("q=nothing-like-this") == []
    assert await ids(f"originator={ke.agency.id}&kind=seized_weapon") == [b["id"], a["id"]]
    assert await ids("tlp=red") == []
    bad = await client.get("/api/v1/alerts?country=ZZ", headers=co.headers)
    assert bad.status_code == 422


async def test_search_input_is_not_query_syntax(client, ke):
    await post_alert(client, ke, seizure_body())
    for q in ['"', "AND OR NOT", "title:*", "rifle')--", "*"]:
        answer = await client.get("/api/v1/alerts", params={"q": q}, headers=ke.headers)
        assert answer.status_code == 200, (q, answer.text)


async def test_pagination_is_stable_under_concurrent_inserts(client, ke):
    first = [await post_alert(client, ke, seizure_body(title=f"Alert {i}")) for i in range(9)]
    seen: list[str] = []
    cursor = None
    rounds = 0
    while True:
        url = "/api/v1/alerts?limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=ke.headers)).json()
        seen += [x["id"] for x in page["items"]]
        # Others keep posting while we page.
        await asyncio.gather(
            *(post_alert(client, ke, seizure_body(title=f"New {rounds}-{j}")) for j in range(2))
        )
        rounds += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert seen == [a["id"] for a in reversed(first)]


async def test_idempotency_key_replays_the_first_answer(client, db, ke):
    headers = {**ke.headers, "Idempotency-Key": "post-1"}
    body = seizure_body()
    one = await client.post("/api/v1/alerts", json=body, headers=headers)
    two = await client.post("/api/v1/alerts", json=body, headers=headers)
    assert one.status_code == two.status_code == 201
    assert one.json() == two.json()
    assert two.headers["idempotent-replayed"] == "true"
    listed = (await client.get("/api/v1/alerts", headers=ke.headers)).json()["items"]
    assert len(listed) == 1
    other = await client.post(
        "/api/v1/alerts", json={**body, "title": "Something else"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_parallel_repeats_of_one_key_all_get_the_first_answer(client, ke):
    """Eight at once (PostgreSQL: eight transactions): one runs, the others wait for it
    and replay its answer; one alert is stored."""
    headers = {**ke.headers, "Idempotency-Key": "post-parallel"}
    body = seizure_body(title="Posted once")
    answers = await asyncio.gather(
        *(client.post("/api/v1/alerts", json=body, headers=headers) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 7
    listed = (await client.get("/api/v1/alerts", headers=ke.headers)).json()["items"]
    assert [a["title"] for a in listed] == ["Posted once"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "body.seized_weapon.country"),
        ({"kind": "rumour"}, "body"),
        ({"title": ""}, "body.seized_weapon.title"),
        (
            {"items": [{"category": "small_arm", "country_of_manufacture": "USA"}]},
            "body.seized_weapon.items.0.country_of_manufacture",
        ),
        ({"items": [{"category": "laser"}]}, "body.seized_weapon.items.0.category"),
        ({"occurred_at": "2026-11-20T08:30:00"}, "body.seized_weapon.occurred_at"),
        ({"location": {"text": "x", "lat": 100, "lon": 0}}, "body.seized_weapon.location.lat"),
        (
            {"handling": {"tlp": "purple", "audience": "community"}},
            "body.seized_weapon.handling.tlp",
        ),
    ],
)
async def test_bad_alerts_are_refused_and_not_stored(client, ke, change, field):
    answer = await client.post("/api/v1/alerts", json=seizure_body(**change), headers=ke.headers)
    assert answer.status_code == 422, answer.text
    fields = [e["field"] for e in answer.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    listed = (await client.get("/api/v1/alerts", headers=ke.headers)).json()["items"]
    assert listed == []


async def test_reader_cannot_post(client, db, app):
    reader = await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db), Role.reader
    )
    answer = await client.post("/api/v1/alerts", json=seizure_body(), headers=reader.headers)
    assert answer.status_code == 403


async def test_a_tombstone_is_not_found_by_its_withdrawn_content(client, ke, co):
    alert = await post_alert(client, ke, seizure_body(tags=["kestrel"], country="UG"))
    await client.post(
        f"/api/v1/alerts/{alert['id']}/withdraw", json={"reason": "Wrong case"}, headers=ke.headers
    )
    for query in ("serial=AK471234", "q=Busia", "tag=kestrel", "country=UG", "tlp=green"):
        theirs = (await client.get(f"/api/v1/alerts?{query}", headers=co.headers)).json()
        assert theirs["items"] == [], query
        mine = (await client.get(f"/api/v1/alerts?{query}", headers=ke.headers)).json()
        assert [a["id"] for a in mine["items"]] == [alert["id"]], query
    listed = (await client.get("/api/v1/alerts?status=withdrawn", headers=co.headers)).json()
    assert [a["tombstone"] for a in listed["items"]] == [True]
