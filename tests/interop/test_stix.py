"""STIX 2.1 export: every bundle validates (committed schemas) and parses with `stix2`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import stix2
from sqlmodel import select

import app.interop.stix2_registration  # noqa: F401 - registers seized-item and the extension
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.interop import stix
from tests.factories import make_actor, make_agency, post_alert, seizure_body, trace_body
from tests.interop.helpers import procurement_body, validate
from tests.processes import child_env


async def _world(client, db, app):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    jo = await make_agency(db, country="JO")
    a = await make_actor(client, db, hashing, ke, Role.focal_point)
    b = await make_actor(client, db, hashing, jo, Role.focal_point)
    return ke, jo, a, b


def _parse(bundle: dict) -> stix2.Bundle:
    return stix2.parse(bundle, allow_custom=False)


async def test_each_kind_exports_a_valid_bundle(client, db, app):
    ke, jo, a, b = await _world(client, db, app)
    bodies = [
        seizure_body(),
        trace_body(jo),
        procurement_body(),
        seizure_body(
            handling={"tlp": "red", "audience": "recipients", "recipient_agencies": [str(jo.id)]}
        ),
        seizure_body(
            handling={
                "tlp": "amber+strict",
                "audience": "recipients",
                "recipient_agencies": [str(jo.id)],
            }
        ),
    ]
    for body in bodies:
        alert = await post_alert(client, a, body)
        for reader in (a, b):
            answer = await client.get(f"/api/v1/alerts/{alert['id']}/stix", headers=reader.headers)
            assert answer.status_code == 200, answer.text
            bundle = answer.json()
            validate(bundle)
            parsed = _parse(bundle)
            by_id = {o.id: o for o in parsed.objects}
            report = by_id[f"report--{alert['id']}"]
            assert report.created_by_ref == stix.identity_id(ke.id) in by_id
            assert report.report_types == [stix.REPORT_TYPES[alert["kind"]]]
            tlp = alert["handling"]["tlp"]
            assert report.object_marking_refs == [stix.TLP2_MARKING_IDS[tlp]]
            assert by_id[stix.TLP2_MARKING_IDS[tlp]].name == f"TLP:{tlp.upper()}"
            assert stix.EXTENSION_ID in by_id
            items = [o for o in parsed.objects if o.type == "seized-item"]
            assert len(items) == len(alert["items"])
            ext = report.extensions[stix.EXTENSION_ID]
            assert ext.kind == alert["kind"] and ext.handling["tlp"] == tlp


def test_registration_module_stands_alone():
    from app.interop import stix2_registration

    assert stix2_registration.EXTENSION_ID == stix.EXTENSION_ID
    assert stix2_registration.ITEM_TYPE == stix.ITEM_TYPE
    source = open(stix2_registration.__file__, encoding="utf-8").read()
    assert "from app" not in source and "import app" not in source


def test_identity_ids_are_deterministic_uuidv5():
    agency = uuid.uuid4()
    first, second = stix.identity_id(agency), stix.identity_id(agency)
    assert first == second and uuid.UUID(first.split("--")[1]).version == 5


def test_tlp_markings_are_the_tlp_2_0_ones():
    # Not the TLP 1.0 constants shipped in stix2.
    tlp1 = {stix2.TLP_WHITE.id, stix2.TLP_GREEN.id, stix2.TLP_AMBER.id, stix2.TLP_RED.id}
    assert not tlp1 & set(stix.TLP2_MARKING_IDS.values())
    assert (
        stix.TLP2_MARKING_IDS["clear"] == "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
    )
    assert (
        stix.TLP2_MARKING_IDS["red"] == "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
    )


async def test_withdrawn_alert_is_revoked_and_a_tombstone_for_recipients(client, db, app):
    _, _, a, b = await _world(client, db, app)
    alert = await post_alert(client, a, seizure_body())
    await client.post(
        f"/api/v1/alerts/{alert['id']}/withdraw", json={"reason": "error"}, headers=a.headers
    )
    theirs = (await client.get(f"/api/v1/alerts/{alert['id']}/stix", headers=b.headers)).json()
    validate(theirs)
    report = next(o for o in _parse(theirs).objects if o.type == "report")
    assert report.revoked is True and report.name == "Withdrawn alert"
    assert not any(o["type"] == "seized-item" for o in theirs["objects"])
    ours = (await client.get(f"/api/v1/alerts/{alert['id']}/stix", headers=a.headers)).json()
    validate(ours)
    assert all(o.get("revoked") for o in ours["objects"] if o["type"] in ("report", "seized-item"))


async def test_export_obeys_sharing_and_is_audited(client, db, app):
    _, _, a, b = await _world(client, db, app)
    restricted = await post_alert(
        client, a, seizure_body(handling={"tlp": "amber", "audience": "originator"})
    )
    hidden = await client.get(f"/api/v1/alerts/{restricted['id']}/stix", headers=b.headers)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/api/v1/alerts/{uuid.uuid4()}/stix")).status_code == 401
    await client.get(f"/api/v1/alerts/{restricted['id']}/stix", headers=a.headers)
    async with db.session() as session:
        rows = (
            await session.exec(select(AuditRecord).where(AuditRecord.action == "alert.export_stix"))
        ).all()
    assert [r.object_id for r in rows] == [restricted["id"]]


@pytest.mark.parametrize("who", ["originator", "other"])
async def test_cli_exports_what_the_agency_may_see(client, db, app, db_url, tmp_path, who):
    ke, jo, a, _ = await _world(client, db, app)
    shared = await post_alert(client, a, seizure_body())
    restricted = await post_alert(
        client, a, seizure_body(handling={"tlp": "amber", "audience": "originator"})
    )
    await post_alert(client, a, trace_body(jo))
    agency = ke if who == "originator" else jo
    out = tmp_path / "bundle.json"
    result = subprocess.run(
        [sys.executable, "-m", "app", "export-stix", "--agency", str(agency.id), "--out", str(out)],
        env=child_env(db_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    bundle = json.loads(out.read_text())
    validate(bundle)
    _parse(bundle)
    reports = {o["id"] for o in bundle["objects"] if o["type"] == "report"}
    assert f"report--{shared['id']}" in reports
    assert (f"report--{restricted['id']}" in reports) is (who == "originator")
    assert len(reports) == (3 if who == "originator" else 2)


def test_cli_refuses_an_unknown_agency(tmp_path, db_url):
    result = subprocess.run(
        [sys.executable, "-m", "app", "export-stix", "--agency", str(uuid.uuid4())],
        env=child_env(db_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Errors go to stderr: stdout is where the bundle goes.
    assert result.returncode == 1 and "No agency" in result.stderr


async def test_extension_schemas_are_served(client):
    for name in (f"{stix.EXTENSION_ID}.json", f"{stix.ITEM_TYPE}.json"):
        answer = await client.get(f"/stix/schemas/{name}")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/schema+json"
        assert answer.json()["$schema"].startswith("https://json-schema.org/")
    assert (await client.get("/stix/schemas/..%2Fstix.py")).status_code == 404
    assert "/stix/schemas/" in stix.extension_definition()["schema"]
