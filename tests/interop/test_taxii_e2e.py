"""A stock TAXII 2.1 client (`taxii2-client`, `stix2`) against `tracewire serve` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from stix2 import Filter, TAXIICollectionSource
from taxii2client.v21 import Server, as_pages

import app.interop.stix2_registration  # noqa: F401 - registers seized-item and the extension
from app.authz.principal import Role
from app.interop import stix
from tests.factories import PASSWORD, make_agency, make_client, make_user, seizure_body
from tests.interop.helpers import procurement_body, pushed_report, validate
from tests.live import serve


@pytest.fixture
async def live(db_url, tmp_path) -> AsyncIterator[str]:
    """`tracewire serve` on a free port of 127.0.0.1; yields its base URL."""
    async with serve(
        db_url,
        tmp_path,
        RATE_LIMIT_PER_MINUTE="0",
        TOKEN_RATE_LIMIT_PER_MINUTE="0",
        WORKER_IN_PROCESS="false",
    ) as base:
        yield base


async def _post(http: httpx.AsyncClient, email: str, body: dict) -> dict:
    token = await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    answer = await http.post(
        "/api/v1/alerts",
        json={**body, "publish": True},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _pull_everything(base: str, client_id: str, secret: str) -> dict:
    """What a partner does with the stock client (runs in a thread: it is synchronous)."""
    server = Server(f"{base}/taxii2/", user=client_id, password=secret)
    root = server.default
    assert root.versions == ["application/taxii+json;version=2.1"]
    collections = {c.title: c for c in root.collections}
    everything = collections["All alerts"]
    pages = list(as_pages(everything.get_objects, per_request=4))
    paged = [o for page in pages for o in page.get("objects", [])]
    whole = everything.get_objects(limit=1000)["objects"]
    since = list(
        as_pages(everything.get_objects, per_request=100, added_after="2026-01-01T00:00:00Z")
    )
    assert [o for page in since for o in page["objects"]] == whole
    manifest = everything.get_manifest(limit=1000)["objects"]
    return {
        "collections": collections,
        "pages": len(pages),
        "paged": paged,
        "whole": whole,
        "manifest": manifest,
    }


async def test_stock_client_pulls_pushes_and_sees_only_what_sharing_allows(db, app, live):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    jo = await make_agency(db, country="JO")
    focal = await make_user(db, hashing, ke, Role.focal_point)
    ke_client, ke_secret = await make_client(db, ke, scopes="alerts:read alerts:write")
    jo_client, jo_secret = await make_client(db, jo, scopes="alerts:read")
    async with httpx.AsyncClient(base_url=live, timeout=10) as http:
        shared = [
            await _post(http, focal.email, seizure_body(title=f"Seizure {n}")) for n in range(3)
        ]
        shared.append(await _post(http, focal.email, procurement_body()))
        restricted = await _post(
            http, focal.email, seizure_body(handling={"tlp": "amber", "audience": "originator"})
        )

    ke_view = await asyncio.to_thread(_pull_everything, live, str(ke_client.id), ke_secret)
    # 4 seizures x 6 objects + the procurement (report, location, 1 item, 1 relationship).
    ids = [o["id"] for o in ke_view["paged"]]
    assert len(ids) == 28 == len(set(ids)) and ke_view["pages"] == 7
    assert ids == [o["id"] for o in ke_view["whole"]] == [m["id"] for m in ke_view["manifest"]]
    validate({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": ke_view["whole"]})
    added = [m["date_added"] for m in ke_view["manifest"]]
    assert added == sorted(added)
    assert f"report--{restricted['id']}" in ids

    jo_view = await asyncio.to_thread(_pull_everything, live, str(jo_client.id), jo_secret)
    jo_ids = [o["id"] for o in jo_view["paged"]]
    assert len(jo_ids) == 22 == len(set(jo_ids))
    assert not any(restricted["id"] in i for i in jo_ids)
    assert all(not c.can_write for c in jo_view["collections"].values())

    def single_object_calls() -> None:
        everything = ke_view["collections"]["All alerts"]
        report_id = f"report--{shared[0]['id']}"
        got = everything.get_object(report_id)["objects"]
        assert [o["id"] for o in got] == [report_id]
        versions = everything.object_versions(report_id)["versions"]
        assert versions == [got[0]["modified"]]
        source = TAXIICollectionSource(everything)
        reports = source.query([Filter("type", "=", "report")])
        assert len(reports) == 5
        item = source.get(f"seized-item--{shared[0]['items'][0]['id']}")
        assert item.type == "seized-item" and item.make == shared[0]["items"][0]["make"]
        report = source.get(report_id)
        assert report.extensions[stix.EXTENSION_ID].kind == "seized_weapon"
        seizures = ke_view["collections"]["Seized weapons"]
        status = seizures.add_objects(pushed_report())
        assert status.status == "complete"
        assert (status.total_count, status.success_count, status.failure_count) == (4, 3, 1)
        status.refresh()
        assert status.success_count == 3

    await asyncio.to_thread(single_object_calls)
