"""Hits: tiers, serial variants, no content through a hit, confirm and dismiss."""

from __future__ import annotations

import pytest

from app.authz.principal import Role
from tests.factories import make_world, post_alert, seizure_body

AKM = {"category": "small_arm", "make": "Kalashnikov Concern", "calibre": "7.62x39mm"}


@pytest.fixture
async def agencies(client, db, app):
    roles = (Role.focal_point, Role.reader)
    return await make_world(client, db, app.state.auth.hashing, roles)


def _alert(item: dict, **extra) -> dict:
    return seizure_body(items=[item], **extra)


async def _hits(client, actor) -> list[dict]:
    answer = await client.get("/api/v1/hits", headers=actor.headers)
    assert answer.status_code == 200
    return answer.json()["items"]


@pytest.mark.parametrize(
    ("theirs", "tier"),
    [
        ({**AKM, "serial_raw": "AK-471234"}, "strong"),
        ({**AKM, "serial_raw": "ak 47 1234", "calibre": "7,62 x 39 mm"}, "strong"),
        (
            {**AKM, "serial_raw": "АК471234", "make": "KALASHNIKOV-CONCERN"},
            "strong",
        ),  # Cyrillic А К
        ({**AKM, "serial_raw": "AK471234", "calibre": "5.45x39mm"}, "probable"),
        ({**AKM, "serial_raw": "AK471234", "calibre": None}, "probable"),
        ({**AKM, "serial_raw": "AK471234", "make": "Norinco"}, "candidate"),
        ({**AKM, "serial_raw": "AK471234", "make": None}, "candidate"),
        ({**AKM, "serial_raw": "AK471234", "serial_status": "obliterated"}, None),
        ({**AKM, "serial_raw": "AK471235"}, None),
    ],
)
async def test_tiers_and_variants(client, agencies, theirs, tier):
    await post_alert(client, agencies["KE"], _alert({**AKM, "serial_raw": "АК 47-1234"}))
    await post_alert(client, agencies["DE"], _alert(theirs))
    found = await _hits(client, agencies["DE"])
    if tier is None:
        assert found == []
        return
    assert [h["tier"] for h in found] == [tier]
    assert found[0]["serial_key"] == "AK471234"
    mirror = await _hits(client, agencies["KE"])
    assert [h["id"] for h in mirror] == [found[0]["id"]]


async def test_no_hit_within_one_agency_or_with_drafts(client, agencies):
    await post_alert(client, agencies["KE"], _alert({**AKM, "serial_raw": "X1000"}))
    await post_alert(client, agencies["KE"], _alert({**AKM, "serial_raw": "X1000"}))
    draft = await post_alert(
        client, agencies["DE"], _alert({**AKM, "serial_raw": "X1000"}), publish=False
    )
    assert await _hits(client, agencies["KE"]) == []
    await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=agencies["DE"].headers)
    assert len(await _hits(client, agencies["DE"])) == 2  # one per Kenyan alert


async def test_changed_items_are_matched_again(client, agencies):
    await post_alert(client, agencies["KE"], _alert({**AKM, "serial_raw": "Z-77"}))
    mine = await post_alert(client, agencies["DE"], _alert({**AKM, "serial_raw": "Z-78"}))
    assert await _hits(client, agencies["DE"]) == []
    changed = await client.patch(
        f"/api/v1/alerts/{mine['id']}",
        json={"items": [{**AKM, "serial_raw": "Z 77"}]},
        headers={**agencies["DE"].headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    assert [h["tier"] for h in await _hits(client, agencies["DE"])] == ["strong"]


async def test_a_hit_leaks_no_content(client, agencies):
    secret_title = "Covert purchase by the Kestrel network"
    secret_summary = "Informant NIGHTJAR reports the buyer is a customs officer."
    hidden = await post_alert(
        client,
        agencies["KE"],
        _alert(
            {**AKM, "serial_raw": "Q-5150", "model": "AKMS-SECRET-MODEL", "lot": "LOT-SECRET"},
            title=secret_title,
            summary=secret_summary,
            # Amber to Jordan only: Germany may not see it, but it is not blind either.
            handling={
                "tlp": "amber",
                "audience": "recipients",
                "recipient_agencies": [str(agencies["JO"].agency.id)],
            },
        ),
    )
    open_alert = await post_alert(client, agencies["DE"], _alert({**AKM, "serial_raw": "Q5150"}))
    for path in ("/api/v1/hits", None):
        if path is None:
            hit_id = (await _hits(client, agencies["DE"]))[0]["id"]
            path = f"/api/v1/hits/{hit_id}"
        answer = await client.get(path, headers=agencies["DE"].headers)
        assert answer.status_code == 200
        for secret in (
            secret_title,
            secret_summary,
            "AKMS-SECRET-MODEL",
            "LOT-SECRET",
            hidden["id"],
            "Q-5150",
            "Kestrel",
        ):
            assert secret not in answer.text, secret
    de_view = (await _hits(client, agencies["DE"]))[0]
    assert de_view["other"]["alert_id"] is None
    assert de_view["other"]["agency_id"] == str(agencies["KE"].agency.id)
    assert de_view["other"]["agency_country"] == "KE"
    assert de_view["my_alert_id"] == open_alert["id"]
    # Make and calibre matched, but Germany may not see the record: no tier signal.
    assert de_view["tier"] == "candidate"
    # The Kenyan side may see the German alert (community, green): it gets the id.
    ke_view = (await _hits(client, agencies["KE"]))[0]
    assert ke_view["other"]["alert_id"] == open_alert["id"]
    assert ke_view["tier"] == "strong"


async def test_confirm_and_dismiss_per_side(client, agencies):
    await post_alert(client, agencies["KE"], _alert({**AKM, "serial_raw": "C-1"}))
    await post_alert(client, agencies["DE"], _alert({**AKM, "serial_raw": "C-1"}))
    hit_id = (await _hits(client, agencies["DE"]))[0]["id"]
    assert (
        await client.post(f"/api/v1/hits/{hit_id}/confirm", headers=agencies["JO"].headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/hits/{hit_id}", headers=agencies["JO"].headers)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/hits/{hit_id}/confirm", headers=agencies["DE_reader"].headers)
    ).status_code == 403
    confirmed = await client.post(f"/api/v1/hits/{hit_id}/confirm", headers=agencies["DE"].headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    dismissed = await client.post(f"/api/v1/hits/{hit_id}/dismiss", headers=agencies["KE"].headers)
    assert dismissed.json()["status"] == "dismissed"
    assert (await client.get(f"/api/v1/hits/{hit_id}", headers=agencies["DE"].headers)).json()[
        "status"
    ] == "confirmed"
    only_new = await client.get("/api/v1/hits?status=new", headers=agencies["DE"].headers)
    assert only_new.json()["items"] == []
