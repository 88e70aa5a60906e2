"""TAXII push keeps each report's TLP marking; what the rules cannot honour is refused."""

from __future__ import annotations

import copy

import pytest
import stix2

from app.interop.taxii import TAXII_MEDIA_TYPE
from app.sharing.markings import TLP2_MARKING_IDS
from tests.interop.helpers import ALL, pushed_report, taxii

RED = TLP2_MARKING_IDS["red"]
GREEN = TLP2_MARKING_IDS["green"]
AMBER_STRICT = TLP2_MARKING_IDS["amber+strict"]


async def _default(client, world, handling: dict) -> None:
    """Kenya's policy default for seizures."""
    ke = world["KE_admin"]
    answer = await client.put(
        f"/api/v1/agencies/{ke.agency.id}/sharing-policy",
        json={"kinds": {"seized_weapon": {"default": handling}}},
        headers=ke.headers,
    )
    assert answer.status_code == 200, answer.text


def _to_germany(world, tlp: str = "green") -> dict:
    return {
        "tlp": tlp,
        "audience": "recipients",
        "recipient_agencies": [str(world["DE"].agency.id)],
    }


def _marked(*refs: str, item_refs: tuple[str, ...] = (), granular: tuple[str, ...] = ()) -> dict:
    envelope = copy.deepcopy(pushed_report())
    report, _, item = envelope["objects"][:3]
    if refs:
        report["object_marking_refs"] = list(refs)
    if item_refs:
        item["object_marking_refs"] = list(item_refs)
    if granular:
        report["granular_markings"] = [
            {"marking_ref": ref, "selectors": ["description"]} for ref in granular
        ]
    return envelope


async def _push(client, actor, envelope: dict) -> dict:
    answer = await client.post(
        ALL + "objects/",
        json=envelope,
        headers={**taxii(actor.headers), "Content-Type": TAXII_MEDIA_TYPE},
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


async def _alerts(client, actor) -> list[dict]:
    return (await client.get("/api/v1/alerts", headers=actor.headers)).json()["items"]


async def _taxii_reports(client, actor) -> list[dict]:
    answer = await client.get(
        ALL + "objects/", params={"match[type]": "report"}, headers=taxii(actor.headers)
    )
    return answer.json().get("objects", [])


def _report_outcome(status: dict) -> tuple[str, dict]:
    report_id = pushed_report()["objects"][0]["id"]
    for kind in ("successes", "failures"):
        for outcome in status[kind]:
            if outcome["id"] == report_id:
                return kind, outcome
    raise AssertionError(status)


async def test_a_red_report_stays_red_and_a_third_agency_cannot_read_it(client, world):
    await _default(client, world, _to_germany(world))
    status = await _push(client, world["KE"], _marked(RED))
    assert _report_outcome(status)[0] == "successes"
    stored = (await _alerts(client, world["KE"]))[0]
    assert stored["handling"]["tlp"] == "red"
    assert stored["handling"]["recipient_agencies"] == [str(world["DE"].agency.id)]
    # The named recipient reads it (REST and TAXII, marked red); Jordan reads nothing.
    assert [a["id"] for a in await _alerts(client, world["DE"])] == [stored["id"]]
    de_reports = await _taxii_reports(client, world["DE"])
    assert [r["object_marking_refs"] for r in de_reports] == [[RED]]
    jo = world["JO"]
    assert await _alerts(client, jo) == []
    assert await _taxii_reports(client, jo) == []
    answer = await client.get(f"/api/v1/alerts/{stored['id']}", headers=jo.headers)
    assert answer.status_code == 404


async def test_red_to_the_community_is_refused_not_widened(client, world):
    await _default(client, world, {"tlp": "green", "audience": "community"})
    status = await _push(client, world["KE"], _marked(RED))
    kind, outcome = _report_outcome(status)
    assert kind == "failures"
    assert "tlp.community-needs-clear-or-green" in outcome["message"]
    assert await _alerts(client, world["KE"]) == []
    assert await _alerts(client, world["JO"]) == []
    assert await _taxii_reports(client, world["JO"]) == []
    # The item and place went with their report: refused too, not stored alone.
    assert status["success_count"] == 0


async def test_red_with_the_defaults_groups_is_refused(client, world):
    ke = world["KE_admin"]
    group = await client.post(
        "/api/v1/sharing-groups",
        json={"name": "East Africa", "members": [str(world["DE"].agency.id)]},
        headers=ke.headers,
    )
    assert group.status_code == 201, group.text
    await _default(
        client,
        world,
        {"tlp": "amber", "audience": "recipients", "recipient_groups": [group.json()["id"]]},
    )
    kind, outcome = _report_outcome(await _push(client, world["KE"], _marked(RED)))
    assert kind == "failures"
    assert "tlp.red-named-agencies-only" in outcome["message"]
    assert await _alerts(client, world["KE"]) == []


@pytest.mark.parametrize(
    ("marking", "tlp"),
    [
        (stix2.TLP_WHITE.id, "clear"),
        (stix2.TLP_GREEN.id, "green"),
        (stix2.TLP_AMBER.id, "amber"),
        (stix2.TLP_RED.id, "red"),
        (TLP2_MARKING_IDS["clear"], "clear"),
        (AMBER_STRICT, "amber+strict"),
    ],
)
async def test_tlp_markings_are_kept_and_tlp_1_is_mapped(client, world, marking, tlp):
    await _default(client, world, _to_germany(world))
    status = await _push(client, world["KE"], _marked(marking))
    assert _report_outcome(status)[0] == "successes", status
    assert (await _alerts(client, world["KE"]))[0]["handling"]["tlp"] == tlp


async def test_an_unmarked_report_takes_the_policy_default(client, world):
    await _default(client, world, _to_germany(world, tlp="amber"))
    await _push(client, world["KE"], _marked())
    stored = (await _alerts(client, world["KE"]))[0]
    assert stored["handling"]["tlp"] == "amber"
    assert stored["handling"]["audience"] == "recipients"
    assert [a["id"] for a in await _alerts(client, world["DE"])] == [stored["id"]]


@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param(_marked(GREEN, RED), id="several-on-the-report"),
        pytest.param(_marked(RED, GREEN), id="several-in-another-order"),
        pytest.param(_marked(GREEN, item_refs=(RED,)), id="red-item-of-a-green-report"),
        pytest.param(_marked(GREEN, granular=(RED,)), id="red-granular-marking"),
        pytest.param(_marked(stix2.TLP_GREEN.id, RED), id="tlp-1-and-tlp-2"),
    ],
)
async def test_the_strictest_marking_wins(client, world, envelope):
    await _default(client, world, _to_germany(world))
    status = await _push(client, world["KE"], envelope)
    assert _report_outcome(status)[0] == "successes", status
    assert (await _alerts(client, world["KE"]))[0]["handling"]["tlp"] == "red"


@pytest.mark.parametrize(
    ("junk", "reason"),
    [
        (
            {"object_marking_refs": ["marking-definition--00000000-0000-4000-8000-000000000000"]},
            "unknown marking",
        ),
        ({"object_marking_refs": [GREEN, "marking-definition--statement-x"]}, "unknown marking"),
        ({"object_marking_refs": RED}, "object_marking_refs"),
        ({"object_marking_refs": [{"id": RED}]}, "object_marking_refs"),
        ({"granular_markings": [{"selectors": ["name"]}]}, "marking_ref"),
        ({"granular_markings": RED}, "granular_markings"),
    ],
)
async def test_unknown_or_malformed_markings_refuse_the_report(client, world, junk, reason):
    await _default(client, world, {"tlp": "green", "audience": "community"})
    envelope = _marked()
    envelope["objects"][0] |= junk
    kind, outcome = _report_outcome(await _push(client, world["KE"], envelope))
    assert kind == "failures"
    assert reason in outcome["message"]
    assert await _alerts(client, world["KE"]) == []
    assert await _alerts(client, world["JO"]) == []
