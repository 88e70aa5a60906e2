"""Sharing groups, policies, TLP write rules, audience preview and access explanations."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.authz.principal import Role
from app.core.types import utcnow
from tests.factories import Actor, make_actor, make_agency, post_alert, seizure_body


@pytest.fixture
async def world(client, db, app):
    """Three agencies, each with an admin and a focal point."""
    hashing = app.state.auth.hashing
    out = {}
    for code in ("KE", "CO", "DE"):
        agency = await make_agency(db, country=code)
        out[code] = {
            "admin": await make_actor(client, db, hashing, agency, Role.agency_admin),
            "focal": await make_actor(client, db, hashing, agency, Role.focal_point),
        }
    return out


async def _group(client, admin: Actor, members, **extra) -> dict:
    answer = await client.post(
        "/api/v1/sharing-groups",
        json={"name": "East Africa firearms desk", "members": [str(m) for m in members], **extra},
        headers=admin.headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _to_group(group_id: str, tlp: str = "amber") -> dict:
    return {"tlp": tlp, "audience": "recipients", "recipient_groups": [group_id]}


async def test_group_visibility_and_management(client, world):
    ke, co, de = world["KE"], world["CO"], world["DE"]
    group = await _group(client, ke["admin"], [co["admin"].agency.id])
    assert set(group["members"]) == {str(ke["admin"].agency.id), str(co["admin"].agency.id)}
    url = f"/api/v1/sharing-groups/{group['id']}"
    assert (await client.get(url, headers=co["focal"].headers)).status_code == 200
    assert (await client.get(url, headers=de["admin"].headers)).status_code == 404
    listed = (await client.get("/api/v1/sharing-groups", headers=de["admin"].headers)).json()
    assert listed["items"] == []
    # A member may not manage it; an outsider does not learn it exists.
    assert (
        await client.patch(url, json={"name": "x"}, headers=co["admin"].headers)
    ).status_code == 403
    assert (
        await client.patch(url, json={"name": "x"}, headers=de["admin"].headers)
    ).status_code == 404
    assert (
        await client.patch(url, json={"name": "x"}, headers=ke["focal"].headers)
    ).status_code == 403
    added = await client.put(f"{url}/members/{de['admin'].agency.id}", headers=ke["admin"].headers)
    assert added.status_code == 200 and added.json()["member_count"] == 3
    owner_leaves = await client.delete(
        f"{url}/members/{ke['admin'].agency.id}", headers=ke["admin"].headers
    )
    assert owner_leaves.status_code == 409
    assert (await client.delete(url, headers=ke["admin"].headers)).status_code == 204
    assert (await client.get(url, headers=ke["admin"].headers)).status_code == 404


async def test_parallel_puts_of_one_member_all_answer_200(client, db, world):
    """PUT is idempotent under concurrency too (PostgreSQL: six transactions on the
    group's row lock): each answers 200, one membership and one audit record."""
    from sqlmodel import select

    from app.audit.models import AuditRecord

    ke, de = world["KE"], world["DE"]
    group = await _group(client, ke["admin"], [])
    url = f"/api/v1/sharing-groups/{group['id']}/members/{de['admin'].agency.id}"
    answers = await asyncio.gather(
        *(client.put(url, headers=ke["admin"].headers) for _ in range(6))
    )
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert {a.json()["member_count"] for a in answers} == {2}
    async with db.session() as session:
        added = (
            await session.exec(select(AuditRecord).where(AuditRecord.action == "group.add_member"))
        ).all()
    assert len(added) == 1


async def test_hidden_members_are_for_the_owner(client, world):
    ke, co = world["KE"], world["CO"]
    group = await _group(client, ke["admin"], [co["admin"].agency.id], hide_members=True)
    url = f"/api/v1/sharing-groups/{group['id']}"
    as_member = (await client.get(url, headers=co["focal"].headers)).json()
    assert as_member["members"] is None and as_member["member_count"] == 2
    as_owner = (await client.get(url, headers=ke["focal"].headers)).json()
    assert len(as_owner["members"]) == 2
    preview = await client.post(
        "/api/v1/alerts/preview-audience",
        json={"kind": "seized_weapon", "handling": _to_group(group["id"])},
        headers=co["focal"].headers,
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["hidden_groups"] == [{"group_id": group["id"], "member_count": 2}]
    assert [a["id"] for a in body["agencies"]] == [str(co["focal"].agency.id)]  # itself, originator


async def test_leaving_a_group_removes_access_to_its_past_alerts(client, world):
    ke, co = world["KE"], world["CO"]
    group = await _group(client, ke["admin"], [co["admin"].agency.id])
    alert = await post_alert(client, ke["focal"], seizure_body(handling=_to_group(group["id"])))
    url = f"/api/v1/alerts/{alert['id']}"
    access = (await client.get(f"{url}/access", headers=co["focal"].headers)).json()
    assert access["reasons"] == [{"rule": "group_member", "group_id": group["id"]}]
    assert access["can_edit"] is False
    removed = await client.delete(
        f"/api/v1/sharing-groups/{group['id']}/members/{co['admin'].agency.id}",
        headers=ke["admin"].headers,
    )
    assert removed.status_code == 200
    assert (await client.get(url, headers=co["focal"].headers)).status_code == 404
    assert (await client.get("/api/v1/alerts", headers=co["focal"].headers)).json()["items"] == []


@pytest.mark.parametrize(
    ("handling", "rule"),
    [
        ({"tlp": "amber", "audience": "community"}, "tlp.community-needs-clear-or-green"),
        ({"tlp": "red", "audience": "community"}, "tlp.community-needs-clear-or-green"),
        (
            {"tlp": "red", "audience": "recipients", "recipient_groups": ["GROUP"]},
            "tlp.red-named-agencies-only",
        ),
        ({"tlp": "green", "audience": "recipients"}, "audience.recipients-empty"),
        (
            {"tlp": "green", "audience": "community", "recipient_agencies": ["CO"]},
            "audience.recipients-unused",
        ),
    ],
)
async def test_tlp_write_rules(client, world, handling, rule):
    ke, co = world["KE"], world["CO"]
    group = await _group(client, ke["admin"], [co["admin"].agency.id])
    subst = {"GROUP": group["id"], "CO": str(co["admin"].agency.id)}
    for key in ("recipient_groups", "recipient_agencies"):
        if key in handling:
            handling = {**handling, key: [subst[v] for v in handling[key]]}
    answer = await client.post(
        "/api/v1/alerts", json=seizure_body(handling=handling), headers=ke["focal"].headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["rule"] == rule
    assert answer.json()["errors"][0]["type"] == rule
    assert (await client.get("/api/v1/alerts", headers=ke["focal"].headers)).json()["items"] == []


async def test_red_to_named_agencies_is_allowed(client, world):
    ke, co, de = world["KE"], world["CO"], world["DE"]
    handling = {
        "tlp": "red",
        "audience": "recipients",
        "recipient_agencies": [str(co["focal"].agency.id)],
    }
    alert = await post_alert(client, ke["focal"], seizure_body(handling=handling))
    assert (
        await client.get(f"/api/v1/alerts/{alert['id']}", headers=co["focal"].headers)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/alerts/{alert['id']}", headers=de["focal"].headers)
    ).status_code == 404


async def test_unknown_recipients_are_refused(client, world):
    ke, de = world["KE"], world["DE"]
    foreign = await _group(client, de["admin"], [])
    for handling, field in (
        (
            {
                "tlp": "amber",
                "audience": "recipients",
                "recipient_agencies": ["00000000-0000-4000-8000-000000000001"],
            },
            "body.handling.recipient_agencies.0",
        ),
        (
            {"tlp": "amber", "audience": "recipients", "recipient_groups": [foreign["id"]]},
            "body.handling.recipient_groups.0",
        ),
    ):
        answer = await client.post(
            "/api/v1/alerts", json=seizure_body(handling=handling), headers=ke["focal"].headers
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == field


async def test_policy_defaults_and_ceilings(client, world):
    ke, co, de = world["KE"], world["CO"], world["DE"]
    agency = ke["admin"].agency.id
    url = f"/api/v1/agencies/{agency}/sharing-policy"
    assert (await client.get(url, headers=ke["focal"].headers)).json()["kinds"] == {}
    policy = {
        "kinds": {
            "seized_weapon": {
                "default": {
                    "tlp": "amber",
                    "audience": "recipients",
                    "recipient_agencies": [str(co["focal"].agency.id)],
                },
                "ceiling": {"widest_tlp": "amber", "widest_audience": "recipients"},
            },
            "trace_request": {"ceiling": {"addressee_only": True}},
        }
    }
    assert (await client.put(url, json=policy, headers=ke["focal"].headers)).status_code == 403
    assert (await client.put(url, json=policy, headers=de["admin"].headers)).status_code == 404
    saved = await client.put(url, json=policy, headers=ke["admin"].headers)
    assert saved.status_code == 200, saved.text
    # Default applied when the post omits handling.
    body = seizure_body()
    del body["handling"]
    alert = await post_alert(client, ke["focal"], body)
    assert alert["handling"]["tlp"] == "amber"
    assert alert["handling"]["recipient_agencies"] == [str(co["focal"].agency.id)]
    assert (
        await client.get(f"/api/v1/alerts/{alert['id']}", headers=co["focal"].headers)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/alerts/{alert['id']}", headers=de["focal"].headers)
    ).status_code == 404
    # Ceiling refuses a wider post, naming the rule.
    wide = await client.post(
        "/api/v1/alerts",
        json=seizure_body(handling={"tlp": "green", "audience": "community"}),
        headers=ke["focal"].headers,
    )
    assert wide.status_code == 422
    assert wide.json()["rule"] == "policy.seized_weapon.widest_tlp"
    # Trace requests never go beyond the addressee.
    trace = {
        "kind": "trace_request",
        "title": "Trace of an AKM",
        "country": "KE",
        "items": [{"category": "small_arm", "make": "Zastava", "serial_raw": "123456"}],
        "details": {
            "addressed_to": str(co["focal"].agency.id),
            "circumstances": "Found in a cache",
            "illicit_reason": "Unlicensed possession",
            "intended_use": "Criminal investigation",
        },
        "handling": {
            "tlp": "amber",
            "audience": "recipients",
            "recipient_agencies": [str(de["focal"].agency.id)],
        },
    }
    beyond = await client.post("/api/v1/alerts", json=trace, headers=ke["focal"].headers)
    assert beyond.status_code == 422
    assert beyond.json()["rule"] == "policy.trace_request.addressee_only"
    trace["handling"] = {"tlp": "amber", "audience": "recipients"}
    ok = await post_alert(client, ke["focal"], trace)
    assert (
        await client.get(f"/api/v1/alerts/{ok['id']}", headers=co["focal"].headers)
    ).status_code == 200
    access = (
        await client.get(f"/api/v1/alerts/{ok['id']}/access", headers=co["focal"].headers)
    ).json()
    assert access["reasons"] == [{"rule": "addressee", "group_id": None}]
    assert (
        await client.get(f"/api/v1/alerts/{ok['id']}", headers=de["focal"].headers)
    ).status_code == 404


async def test_policy_default_must_obey_its_own_ceiling(client, world):
    ke = world["KE"]
    policy = {
        "kinds": {
            "seized_weapon": {
                "default": {"tlp": "green", "audience": "community"},
                "ceiling": {"widest_audience": "recipients"},
            }
        }
    }
    answer = await client.put(
        f"/api/v1/agencies/{ke['admin'].agency.id}/sharing-policy",
        json=policy,
        headers=ke["admin"].headers,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.kinds.seized_weapon.default.audience"


async def test_embargo_holds_until_it_passes(client, world):
    ke, co = world["KE"], world["CO"]
    later = (utcnow() + timedelta(hours=2)).isoformat()
    alert = await post_alert(
        client,
        ke["focal"],
        seizure_body(handling={"tlp": "green", "audience": "community", "embargo_until": later}),
    )
    assert (
        await client.get(f"/api/v1/alerts/{alert['id']}", headers=co["focal"].headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/alerts/{alert['id']}", headers=ke["focal"].headers)
    ).status_code == 200
    earlier = (utcnow() - timedelta(minutes=1)).isoformat()
    changed = await client.patch(
        f"/api/v1/alerts/{alert['id']}",
        json={"handling": {"tlp": "green", "audience": "community", "embargo_until": earlier}},
        headers={**ke["focal"].headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    assert (
        await client.get(f"/api/v1/alerts/{alert['id']}", headers=co["focal"].headers)
    ).status_code == 200


async def test_preview_lists_the_audience(client, world):
    ke, co, de = world["KE"], world["CO"], world["DE"]
    group = await _group(client, ke["admin"], [co["admin"].agency.id])
    preview = await client.post(
        "/api/v1/alerts/preview-audience",
        json={
            "kind": "seized_weapon",
            "handling": {
                "tlp": "amber",
                "audience": "recipients",
                "recipient_agencies": [str(de["focal"].agency.id)],
                "recipient_groups": [group["id"]],
            },
        },
        headers=ke["focal"].headers,
    )
    assert preview.status_code == 200, preview.text
    got = {a["id"]: [r["rule"] for r in a["reasons"]] for a in preview.json()["agencies"]}
    assert got == {
        str(ke["focal"].agency.id): ["originator"],
        str(co["focal"].agency.id): ["group_member"],
        str(de["focal"].agency.id): ["recipient_agency"],
    }
    community = await client.post(
        "/api/v1/alerts/preview-audience",
        json={"kind": "seized_weapon", "handling": {"tlp": "clear", "audience": "community"}},
        headers=ke["focal"].headers,
    )
    assert len(community.json()["agencies"]) == 3
    refused = await client.post(
        "/api/v1/alerts/preview-audience",
        json={"kind": "seized_weapon", "handling": {"tlp": "red", "audience": "community"}},
        headers=ke["focal"].headers,
    )
    assert refused.status_code == 422
