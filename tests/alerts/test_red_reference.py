"""TLP:RED content reaches an API client only with `alerts:read:red` (DESIGN §6): every
read path (get, list, search, STIX export, TAXII) gives other clients a reference."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import stix2

import app.interop.stix2_registration  # noqa: F401 - registers seized-item and the extension
from app.authz.principal import Role
from app.interop import stix
from tests.factories import (
    Actor,
    bearer,
    client_login,
    make_actor,
    make_agency,
    make_client,
    post_alert,
    seizure_body,
    trace_body,
)
from tests.interop.helpers import ALL, taxii, validate

REFERENCE_FIELDS = {"id", "kind", "status", "version", "tlp", "url", "reference"}
CONTENT_FIELDS = ("title", "summary", "country", "items", "handling", "details", "tags")


@dataclass
class World:
    alert: dict
    amber: dict
    headers: dict[str, dict[str, str]]
    basic: dict[str, tuple[str, str]]


@pytest.fixture
async def world(client, db, app) -> World:
    hashing = app.state.auth.hashing
    ke, jo = await make_agency(db, country="KE"), await make_agency(db, country="JO")
    author: Actor = await make_actor(client, db, hashing, ke, Role.focal_point)
    reader = await make_actor(client, db, hashing, jo, Role.reader)
    handling = {"tlp": "red", "audience": "recipients", "recipient_agencies": [str(jo.id)]}
    alert = await post_alert(
        client, author, seizure_body(title="Red rifles of Busia", handling=handling)
    )
    amber = await post_alert(
        client,
        author,
        seizure_body(title="Amber rifles", handling=handling | {"tlp": "amber"}),
    )
    headers = {"reader": reader.headers}
    basic: dict[str, tuple[str, str]] = {}
    for name, agency, scopes in (
        ("client", jo, "alerts:read alerts:write traces:write webhooks:manage"),
        ("red_client", jo, "alerts:read alerts:read:red"),
        ("own_client", ke, "alerts:read alerts:write"),
    ):
        api_client, secret = await make_client(db, agency, scopes)
        basic[name] = (str(api_client.id), secret)
        headers[name] = bearer((await client_login(client, api_client.id, secret))["access_token"])
    narrowed = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "alerts:read"},
        auth=basic["red_client"],
    )
    headers["narrowed_red_client"] = bearer(narrowed.json()["access_token"])
    return World(alert, amber, headers, basic)


SHOWN = {
    "reader": "content",
    "client": "reference",
    "red_client": "content",
    "own_client": "reference",  # its own agency's red alert: still only with the scope
    "narrowed_red_client": "reference",  # a token that left the scope out
}


def _seen(body: dict) -> str:
    if body.get("reference"):
        present = {k for k, v in body.items() if v not in (None, False, [])}
        leaked = present - REFERENCE_FIELDS - {
            "originator_agency_id", "created_at", "updated_at", "published_at",
        }  # fmt: skip
        return "reference" if not leaked else f"leaky reference {sorted(leaked)}"
    return "content" if body.get("title") else "nothing"


async def test_get_list_and_search(client, world: World):
    alert_id = world.alert["id"]
    for who, expected in SHOWN.items():
        headers = world.headers[who]
        got = await client.get(f"/api/v1/alerts/{alert_id}", headers=headers)
        assert got.status_code == 200, (who, got.text)
        assert _seen(got.json()) == expected, (who, got.json())
        if expected == "reference":
            body = got.json()
            assert body["tlp"] == "red" and body["url"] == f"/api/v1/alerts/{alert_id}"
            assert all(body.get(k) is None for k in CONTENT_FIELDS)
        listed = {
            a["id"]: a
            for a in (await client.get("/api/v1/alerts", headers=headers)).json()["items"]
        }
        assert _seen(listed[alert_id]) == expected, who
        assert _seen(listed[world.amber["id"]]) == "content", who
        # Content searches never match what the caller may not read.
        for query in ("serial=M70-99812", "q=busia", "tlp=red"):
            found = await client.get(f"/api/v1/alerts?{query}", headers=headers)
            ids = [a["id"] for a in found.json()["items"]]
            assert (alert_id in ids) == (expected == "content"), (who, query)


async def test_stix_export(client, world: World):
    alert_id = world.alert["id"]
    for who, expected in SHOWN.items():
        answer = await client.get(f"/api/v1/alerts/{alert_id}/stix", headers=world.headers[who])
        assert answer.status_code == 200, (who, answer.text)
        bundle = answer.json()
        validate(bundle)
        parsed = stix2.parse(bundle, allow_custom=False)
        report = next(o for o in parsed.objects if o.id == f"report--{alert_id}")
        assert report.object_marking_refs == [stix.TLP2_MARKING_IDS["red"]], who
        items = [o for o in parsed.objects if o.type in ("seized-item", "location")]
        ext = report.extensions[stix.EXTENSION_ID]
        if expected == "reference":
            assert report.name == "Restricted alert (TLP:RED)" and not items, who
            assert ext.reference is True and "details" not in ext and "country" not in ext
            assert "Busia" not in answer.text and "M70" not in answer.text
        else:
            assert report.name == "Red rifles of Busia" and items, who


async def test_taxii_objects(client, world: World):
    alert_id = world.alert["id"]
    for who, expected in SHOWN.items():
        page = await client.get(f"{ALL}objects/", headers=taxii(world.headers[who]))
        assert page.status_code == 200, (who, page.text)
        objects = page.json()["objects"]
        report = next(o for o in objects if o["id"] == f"report--{alert_id}")
        flag = report["extensions"][stix.EXTENSION_ID]
        if expected == "reference":
            assert flag.get("reference") is True and "Red rifles" not in page.text, who
            assert f"location--{alert_id}" not in {o["id"] for o in objects}
        else:
            assert report["name"] == "Red rifles of Busia", who
    # HTTP Basic (what stock TAXII clients send) holds the client to the same rule.
    for who in ("client", "red_client"):
        page = await client.get(f"{ALL}objects/", headers=taxii({}), auth=world.basic[who])
        report = next(o for o in page.json()["objects"] if o["id"] == f"report--{alert_id}")
        assert bool(report["extensions"][stix.EXTENSION_ID].get("reference")) == (who == "client")


async def test_trace_request_read_model(client, db, app, world: World):
    ke = await make_agency(db, country="KE")
    jo = await make_agency(db, country="JO")
    author = await make_actor(client, db, app.state.auth.hashing, ke, Role.focal_point)
    body = trace_body(
        jo, title="Red trace of a Busia rifle", handling={"tlp": "red", "audience": "recipients"}
    )
    trace = await post_alert(client, author, body)
    for scopes, sees in (
        ("alerts:read traces:write", False),
        ("alerts:read alerts:read:red", True),
    ):
        api_client, secret = await make_client(db, jo, scopes)
        headers = bearer((await client_login(client, api_client.id, secret))["access_token"])
        one = await client.get(f"/api/v1/trace-requests/{trace['id']}", headers=headers)
        assert one.status_code == 200, one.text
        assert (one.json()["title"] == "Red trace of a Busia rifle") is sees, scopes
        assert (one.json()["title"] is None) is not sees, scopes
        listed = await client.get("/api/v1/trace-requests?direction=incoming", headers=headers)
        titles = [t["title"] for t in listed.json()["items"] if t["alert_id"] == trace["id"]]
        assert titles == (["Red trace of a Busia rifle"] if sees else [None]), scopes
