"""TAXII 2.1 in-process: resources, paging, filters, sharing, errors and media types."""

from __future__ import annotations

import base64

import pytest
from sqlmodel import select

from app.audit import service as audit
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.interop.taxii import TAXII_MEDIA_TYPE
from tests.factories import (
    make_actor,
    make_agency,
    make_client,
    post_alert,
    seizure_body,
    trace_body,
)
from tests.interop.helpers import ACCEPT, ALL, SEIZURES, TRACES, pushed_report, taxii


async def _world(client, db, app):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    de = await make_agency(db, country="DE")
    a = await make_actor(client, db, hashing, ke, Role.focal_point)
    b = await make_actor(client, db, hashing, de, Role.focal_point)
    return ke, de, a, b


def _basic(client_id, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def test_discovery_root_and_collections(client, db, app):
    _, _, a, _ = await _world(client, db, app)
    found = await client.get("/taxii2/", headers=taxii(a.headers))
    assert found.status_code == 200
    assert found.headers["content-type"] == TAXII_MEDIA_TYPE
    root = found.json()["api_roots"][0]
    assert root.endswith("/taxii2/api/") and found.json()["default"] == root
    api = (await client.get("/taxii2/api/", headers=taxii(a.headers))).json()
    assert api["versions"] == [TAXII_MEDIA_TYPE] and api["max_content_length"] > 0
    colls = (await client.get("/taxii2/api/collections/", headers=taxii(a.headers))).json()
    assert len(colls["collections"]) == 4
    assert all(c["can_read"] and c["can_write"] for c in colls["collections"])
    one = await client.get(ALL, headers=taxii(a.headers))
    assert one.json()["media_types"] == ["application/stix+json;version=2.1"]


async def test_rights_follow_the_caller(client, db, app):
    ke, _, _, _ = await _world(client, db, app)
    reader = await make_actor(client, db, app.state.auth.hashing, ke, Role.reader)
    colls = (await client.get("/taxii2/api/collections/", headers=taxii(reader.headers))).json()
    assert all(c["can_read"] and not c["can_write"] for c in colls["collections"])
    hooks, secret = await make_client(db, ke, scopes="webhooks:manage")
    colls = (
        await client.get("/taxii2/api/collections/", headers={**ACCEPT, **_basic(hooks.id, secret)})
    ).json()
    assert not any(c["can_read"] or c["can_write"] for c in colls["collections"])
    refused = await client.get(ALL + "objects/", headers={**ACCEPT, **_basic(hooks.id, secret)})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == TAXII_MEDIA_TYPE
    assert refused.json()["http_status"] == "403"
    posted = await client.post(
        ALL + "objects/",
        json={
            "objects": [{"type": "report", "id": "report--0c8b4c3e-1c1f-4d7e-9c5e-0a0b0c0d0e0f"}]
        },
        headers={**taxii(reader.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    assert posted.status_code == 403


async def test_pages_cover_every_object_once_in_order(client, db, app):
    _, _, a, _ = await _world(client, db, app)
    for n in range(4):
        await post_alert(client, a, seizure_body(title=f"Seizure {n}"))
    seen, dates, cursor, pages = [], [], None, 0
    while True:
        params = {"limit": 3} | ({"next": cursor} if cursor else {})
        page = await client.get(ALL + "objects/", params=params, headers=taxii(a.headers))
        assert page.status_code == 200, page.text
        body = page.json()
        pages += 1
        seen += [o["id"] for o in body.get("objects", [])]
        if body.get("objects"):
            dates += [
                page.headers["X-TAXII-Date-Added-First"],
                page.headers["X-TAXII-Date-Added-Last"],
            ]
        assert ("next" in body) == body["more"]
        if not body["more"]:
            break
        cursor = body["next"]
    # 4 alerts x (report + location + 2 items + 2 relationships)
    assert len(seen) == 24 == len(set(seen)) and pages == 8
    assert dates == sorted(dates)
    manifest = (await client.get(ALL + "manifest/", headers=taxii(a.headers))).json()
    assert [m["id"] for m in manifest["objects"]] == seen
    assert [m["date_added"] for m in manifest["objects"]] == sorted(
        m["date_added"] for m in manifest["objects"]
    )


async def test_filters(client, db, app):
    _, de, a, _ = await _world(client, db, app)
    first = await post_alert(client, a, seizure_body())
    await post_alert(client, a, trace_body(de))
    reports = (
        await client.get(
            ALL + "objects/", params={"match[type]": "report"}, headers=taxii(a.headers)
        )
    ).json()["objects"]
    assert len(reports) == 2
    only = (
        await client.get(
            ALL + "objects/",
            params={"match[id]": f"report--{first['id']}"},
            headers=taxii(a.headers),
        )
    ).json()["objects"]
    assert [o["id"] for o in only] == [f"report--{first['id']}"]
    seizures = (
        await client.get(
            SEIZURES + "objects/", params={"match[type]": "report"}, headers=taxii(a.headers)
        )
    ).json()
    assert [o["report_types"] for o in seizures["objects"]] == [["weapon-seizure"]]
    got = await client.get(ALL + f"objects/report--{first['id']}/", headers=taxii(a.headers))
    assert got.status_code == 200 and got.json()["objects"][0]["name"] == first["title"]
    versions = (
        await client.get(ALL + f"objects/report--{first['id']}/versions/", headers=taxii(a.headers))
    ).json()
    assert versions["versions"] == [got.json()["objects"][0]["modified"]]
    wrong_spec = (
        await client.get(
            ALL + "objects/", params={"match[spec_version]": "2.0"}, headers=taxii(a.headers)
        )
    ).json()
    assert wrong_spec == {"more": False}
    modified = got.json()["objects"][0]["modified"]
    by_version = (
        await client.get(
            ALL + f"objects/report--{first['id']}/",
            params={"match[version]": modified},
            headers=taxii(a.headers),
        )
    ).json()
    assert len(by_version["objects"]) == 1
    last = await client.get(ALL + "objects/", headers=taxii(a.headers))
    after = last.headers["X-TAXII-Date-Added-Last"]
    assert (
        await client.get(ALL + "objects/", params={"added_after": after}, headers=taxii(a.headers))
    ).json() == {"more": False}
    trace_only = (
        await client.get(
            TRACES + "objects/", params={"match[type]": "report"}, headers=taxii(a.headers)
        )
    ).json()
    assert [o["report_types"] for o in trace_only["objects"]] == [["firearm-trace-request"]]


async def test_b_never_sees_a_restricted_alert(client, db, app):
    _, _, a, b = await _world(client, db, app)
    restricted = await post_alert(
        client, a, seizure_body(handling={"tlp": "amber", "audience": "originator"})
    )
    for n in range(3):
        await post_alert(client, a, seizure_body(title=f"Open {n}"))
    hidden_ids = (
        {f"report--{restricted['id']}", f"location--{restricted['id']}"}
        | {f"seized-item--{i['id']}" for i in restricted["items"]}
        | {f"relationship--{i['id']}" for i in restricted["items"]}
    )

    async def everything(actor, path, params=None):
        ids, cursor = [], None
        while True:
            q = {"limit": 2, **(params or {})} | ({"next": cursor} if cursor else {})
            body = (await client.get(path, params=q, headers=taxii(actor.headers))).json()
            ids += [o["id"] for o in body.get("objects", [])]
            if not body["more"]:
                return ids
            cursor = body["next"]

    assert hidden_ids <= set(await everything(a, ALL + "objects/"))
    assert not hidden_ids & set(await everything(b, ALL + "objects/"))
    assert not hidden_ids & set(await everything(b, ALL + "manifest/"))
    for hidden in hidden_ids:
        one = await client.get(ALL + f"objects/{hidden}/", headers=taxii(b.headers))
        assert one.status_code == 404 and one.headers["content-type"] == TAXII_MEDIA_TYPE
        versions = await client.get(ALL + f"objects/{hidden}/versions/", headers=taxii(b.headers))
        assert versions.status_code == 404
        matched = (
            await client.get(
                ALL + "objects/", params={"match[id]": hidden}, headers=taxii(b.headers)
            )
        ).json()
        assert matched == {"more": False}
        listed = (
            await client.get(
                ALL + "manifest/", params={"match[id]": hidden}, headers=taxii(b.headers)
            )
        ).json()
        assert listed == {"more": False}
    # A cursor from A's session, pointing just before the restricted alert, shows B nothing of it.
    page = (
        await client.get(ALL + "objects/", params={"limit": 1}, headers=taxii(a.headers))
    ).json()
    assert page["objects"][0]["id"] == f"report--{restricted['id']}"
    from_a = (
        await client.get(
            ALL + "objects/", params={"limit": 50, "next": page["next"]}, headers=taxii(b.headers)
        )
    ).json()
    assert not hidden_ids & {o["id"] for o in from_a["objects"]}
    assert len(from_a["objects"]) == 18


async def test_withdrawn_alert_is_a_revoked_tombstone_for_readers(client, db, app):
    _, _, a, b = await _world(client, db, app)
    alert = await post_alert(client, a, seizure_body())
    answer = await client.post(
        f"/api/v1/alerts/{alert['id']}/withdraw", json={"reason": "duplicate"}, headers=a.headers
    )
    assert answer.status_code == 200
    theirs = (await client.get(ALL + "objects/", headers=taxii(b.headers))).json()["objects"]
    assert (
        len(theirs) == 1 and theirs[0]["revoked"] is True and theirs[0]["name"] == "Withdrawn alert"
    )
    assert "Busia" not in str(theirs)
    ours = (await client.get(ALL + "objects/", headers=taxii(a.headers))).json()["objects"]
    assert len(ours) == 6 and all(o["revoked"] for o in ours)


async def test_basic_auth_with_api_client_and_back_off(client, db, app, settings):
    ke, _, a, _ = await _world(client, db, app)
    await post_alert(client, a, seizure_body())
    reader, secret = await make_client(db, ke, scopes="alerts:read")
    ok = await client.get(ALL + "objects/", headers={**ACCEPT, **_basic(reader.id, secret)})
    assert ok.status_code == 200 and len(ok.json()["objects"]) == 6
    for _ in range(settings.login_max_failures):
        bad = await client.get(ALL + "objects/", headers={**ACCEPT, **_basic(reader.id, "wrong")})
        assert bad.status_code == 401 and bad.headers["content-type"] == TAXII_MEDIA_TYPE
        assert "Basic" in bad.headers["www-authenticate"]
    blocked = await client.get(ALL + "objects/", headers={**ACCEPT, **_basic(reader.id, secret)})
    assert blocked.status_code == 429 and "retry-after" in blocked.headers
    async with db.session() as session:
        failures = (
            await session.exec(
                select(AuditRecord).where(
                    AuditRecord.action == "auth.token", AuditRecord.outcome == "failure"
                )
            )
        ).all()
    assert len(failures) == settings.login_max_failures


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/taxii2/", {}, 401),
        ("/taxii2/", {"Authorization": "Bearer nonsense"}, 401),
        ("/taxii2/", {"Authorization": "Basic !!!"}, 401),
        ("/taxii2/", "wrong-accept", 406),
        ("/taxii2/", "old-taxii", 406),
        ("/taxii2/api/collections/not-a-collection/", "auth", 404),
        ("/taxii2/api/collections/0c8b4c3e-1c1f-4d7e-9c5e-0a0b0c0d0e0f/objects/", "auth", 404),
        ("/taxii2/api/nowhere/", "auth", 404),
        (ALL + "objects/?limit=0", "auth", 400),
        (ALL + "objects/?next=garbage", "auth", 400),
        (ALL + "objects/?added_after=yesterday", "auth", 400),
        (ALL + "objects/?match[version]=soon", "auth", 400),
        ("/taxii2/api/status/0c8b4c3e-1c1f-4d7e-9c5e-0a0b0c0d0e0f/", "auth", 404),
        (ALL + "objects/report--0c8b4c3e-1c1f-4d7e-9c5e-0a0b0c0d0e0f/", "auth", 404),
    ],
)
async def test_every_error_is_a_taxii_error(client, db, app, path, headers, status):
    _, _, a, _ = await _world(client, db, app)
    sent = (
        {
            "auth": taxii(a.headers),
            "wrong-accept": {**a.headers, "Accept": "application/json"},
            "old-taxii": {**a.headers, "Accept": "application/taxii+json;version=2.0"},
        }.get(headers, headers)
        if isinstance(headers, str)
        else {**ACCEPT, **headers}
    )
    answer = await client.get(path, headers=sent)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == TAXII_MEDIA_TYPE
    body = answer.json()
    assert body["http_status"] == str(status) and body["title"]


async def test_wrong_method_and_media_type_and_body(client, db, app):
    _, _, a, _ = await _world(client, db, app)
    deleted = await client.delete("/taxii2/", headers=taxii(a.headers))
    assert deleted.status_code == 405 and deleted.headers["content-type"] == TAXII_MEDIA_TYPE
    slashless = await client.get(ALL.rstrip("/"), params={"x": 1}, headers=taxii(a.headers))
    assert slashless.status_code == 308 and slashless.headers["location"] == f"{ALL}?x=1"
    as_json = await client.post(ALL + "objects/", json={"objects": []}, headers=taxii(a.headers))
    assert as_json.status_code == 415 and as_json.headers["content-type"] == TAXII_MEDIA_TYPE
    for body in (b"{", b'{"objects": []}', b'{"objects": [1]}', b"[]"):
        bad = await client.post(
            ALL + "objects/",
            content=body,
            headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
        )
        assert bad.status_code == 400, body
        assert bad.headers["content-type"] == TAXII_MEDIA_TYPE


async def test_push_reports_in_and_read_the_status(client, db, app):
    _, _, a, b = await _world(client, db, app)
    posted = await client.post(
        SEIZURES + "objects/",
        json=pushed_report(),
        headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    assert posted.status_code == 202, posted.text
    assert posted.headers["content-type"] == TAXII_MEDIA_TYPE
    status = posted.json()
    assert (
        status["status"],
        status["total_count"],
        status["success_count"],
        status["failure_count"],
    ) == (
        "complete",
        4,
        3,
        1,
    )
    assert status["failures"][0]["id"].startswith("indicator--")
    again = await client.get(f"/taxii2/api/status/{status['id']}/", headers=taxii(a.headers))
    assert again.status_code == 200 and again.json() == status
    assert (
        await client.get(f"/taxii2/api/status/{status['id']}/", headers=taxii(b.headers))
    ).status_code == 404
    alerts = (await client.get("/api/v1/alerts", headers=a.headers)).json()["items"]
    assert len(alerts) == 1
    stored = alerts[0]
    assert stored["title"] == "Pistol seized at Malaba" and stored["status"] == "published"
    assert stored["items"][0]["serial_raw"] == "ABC123"
    # No policy: the narrowest default handling, so B sees nothing.
    assert stored["handling"]["audience"] == "originator"
    assert (await client.get("/api/v1/alerts", headers=b.headers)).json()["items"] == []


async def test_push_with_an_invalid_report_stores_nothing_of_it(client, db, app):
    _, _, a, _ = await _world(client, db, app)
    envelope = pushed_report(country="ZZ")
    envelope["objects"][0]["report_types"] = ["threat-report"]
    posted = await client.post(
        TRACES + "objects/",
        json=envelope,
        headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    assert posted.status_code == 202
    assert posted.json()["success_count"] == 0
    assert (await client.get("/api/v1/alerts", headers=a.headers)).json()["items"] == []
    wrong_kind = pushed_report()
    posted = await client.post(
        TRACES + "objects/",
        json=wrong_kind,
        headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    assert posted.json()["success_count"] == 0
    assert "trace_request" in posted.json()["failures"][0]["message"]


async def test_middleware_refusals_are_taxii_errors_too(client, db, app, settings):
    _, _, a, _ = await _world(client, db, app)
    headers = {**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE}
    huge = b'{"objects": ["' + b"x" * (settings.max_body_bytes + 10) + b'"]}'
    too_big = await client.post(ALL + "objects/", content=huge, headers=headers)
    deep = await client.post(ALL + "objects/", content=b"[" * 200 + b"]" * 200, headers=headers)
    for answer, status in ((too_big, 413), (deep, 422)):
        assert answer.status_code == status
        assert answer.headers["content-type"] == TAXII_MEDIA_TYPE
        assert answer.json()["http_status"] == str(status)
        assert answer.headers["x-request-id"]
    # The rest of the API keeps problem+json.
    plain = await client.post(
        "/api/v1/alerts",
        content=b"[" * 200 + b"]" * 200,
        headers={**a.headers, "Content-Type": "application/json"},
    )
    assert plain.headers["content-type"] == "application/problem+json"


async def test_a_refused_report_rolls_back_alone(client, db, app):
    ke, _, a, _ = await _world(client, db, app)
    envelope = pushed_report()
    bad = {
        **envelope["objects"][0],
        "id": "report--5d7e1c0b-3a44-4a8e-9d0e-6f7f6c2b1a01",
        "report_types": ["firearm-trace-request"],
        "extensions": {
            "extension-definition--18955755-1974-4af1-b67e-85e6ec262497": {
                "extension_type": "property-extension",
                "kind": "trace_request",
                "details": {
                    "addressed_to": str(ke.id),
                    "circumstances": "x",
                    "illicit_reason": "y",
                    "intended_use": "z",
                },
            }
        },
    }
    envelope["objects"].insert(1, bad)
    posted = await client.post(
        ALL + "objects/",
        json=envelope,
        headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    status = posted.json()
    assert (status["success_count"], status["failure_count"]) == (3, 2)
    refused = next(f for f in status["failures"] if f["id"] == bad["id"])
    assert "another agency" in refused["message"]
    alerts = (await client.get("/api/v1/alerts", headers=a.headers)).json()["items"]
    assert [x["kind"] for x in alerts] == ["seized_weapon"]
    async with db.session() as session:
        assert (await audit.verify(session)).ok


async def test_a_report_refused_after_a_look_up_keeps_the_others_audit_records(client, db, app):
    """The refusal comes after a query in the report's savepoint (its addressee is looked up
    and not found): rolling back to the savepoint takes that report's records only."""
    _, _, a, _ = await _world(client, db, app)
    envelope = pushed_report()
    unknown = {
        **envelope["objects"][0],
        "id": "report--5d7e1c0b-3a44-4a8e-9d0e-6f7f6c2b1a02",
        "report_types": ["firearm-trace-request"],
        "extensions": {
            "extension-definition--18955755-1974-4af1-b67e-85e6ec262497": {
                "extension_type": "property-extension",
                "kind": "trace_request",
                "details": {
                    "addressed_to": "0b7e6d6c-2f1a-4c55-9a51-1d2c3b4a5f60",
                    "circumstances": "x",
                    "illicit_reason": "y",
                    "intended_use": "z",
                },
            }
        },
    }
    envelope["objects"].append(unknown)  # after the good report, whose records are staged
    posted = await client.post(
        ALL + "objects/",
        json=envelope,
        headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    refused = next(f for f in posted.json()["failures"] if f["id"] == unknown["id"])
    assert "no agency" in refused["message"]
    alerts = (await client.get("/api/v1/alerts", headers=a.headers)).json()["items"]
    assert len(alerts) == 1
    async with db.session() as session:
        created = await session.exec(
            select(AuditRecord.object_id).where(AuditRecord.action == "alert.create")
        )
        assert created.all() == [alerts[0]["id"]]
        assert (await audit.verify(session)).ok


@pytest.mark.parametrize(
    "junk",
    [
        {"report_types": 7},
        {"report_types": [["weapon-seizure"]]},
        {"object_refs": 3, "labels": {"a": 1}},
        {"name": ["x"], "description": 5},
        {
            "extensions": {
                "extension-definition--18955755-1974-4af1-b67e-85e6ec262497": {"kind": ["x"]}
            }
        },
        {
            "extensions": {
                "extension-definition--18955755-1974-4af1-b67e-85e6ec262497": {"details": [1]}
            }
        },
        {"extensions": {"extension-definition--18955755-1974-4af1-b67e-85e6ec262497": "x"}},
        {"extensions": []},
    ],
)
async def test_junk_reports_fail_cleanly(client, db, app, junk):
    _, _, a, _ = await _world(client, db, app)
    envelope = pushed_report()
    envelope["objects"][0] |= junk
    envelope["objects"][1]["latitude"] = "north"
    posted = await client.post(
        ALL + "objects/",
        json=envelope,
        headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    assert posted.status_code == 202, posted.text
    assert posted.json()["success_count"] == 0


async def test_reading_objects_is_audited_and_manifest_shows_no_content(client, db, app):
    _, _, a, b = await _world(client, db, app)
    first = await post_alert(client, a, seizure_body())
    second = await post_alert(client, a, seizure_body(title="Second"))
    await client.get(ALL + "objects/", headers=taxii(b.headers))
    await client.get(
        ALL + f"objects/seized-item--{first['items'][0]['id']}/", headers=taxii(b.headers)
    )
    manifest = (await client.get(ALL + "manifest/", headers=taxii(b.headers))).json()
    assert set(manifest["objects"][0]) == {"id", "date_added", "version", "media_type"}
    async with db.session() as session:
        rows = (
            await session.exec(select(AuditRecord).where(AuditRecord.action == "taxii.objects"))
        ).all()
    assert [r.agency_id for r in rows] == [b.agency.id, b.agency.id]
    assert rows[0].details == {"alert_ids": [first["id"], second["id"]]}
    assert rows[1].object_id == first["id"]


async def test_a_report_the_database_could_not_key_is_refused_alone(client, db, app):
    """A seized item whose make cannot be keyed (its NFKC form outgrows the key column):
    that report is a failure of the status resource, the others are stored; never a 500."""
    _, _, a, _ = await _world(client, db, app)
    envelope = pushed_report()
    report, place, item = envelope["objects"][:3]
    odd_item = {**item, "id": "seized-item--0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"}
    odd_item["make"] = "\ufdfa" * 100
    odd = {
        **report,
        "id": "report--5d7e1c0b-3a44-4a8e-9d0e-6f7f6c2b1a03",
        "object_refs": [place["id"], odd_item["id"]],
    }
    envelope["objects"] += [odd, odd_item]
    posted = await client.post(
        ALL + "objects/",
        json=envelope,
        headers={**taxii(a.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    assert posted.status_code == 202, posted.text
    refused = next(f for f in posted.json()["failures"] if f["id"] == odd["id"])
    assert "too long to match" in refused["message"]
    alerts = (await client.get("/api/v1/alerts", headers=a.headers)).json()["items"]
    assert len(alerts) == 1
    async with db.session() as session:
        assert (await audit.verify(session)).ok
