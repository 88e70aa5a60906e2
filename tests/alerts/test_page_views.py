"""The list page cut per view, against an oracle of its own (not the read model's code): a
tombstone and a reference carry no content field at all, recipient lists reach the
originator only, drafts and embargoed alerts nobody else, in the list and in GET alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.authz.principal import Role
from app.core.types import utcnow
from tests.factories import (
    Actor,
    bearer,
    client_login,
    make_actor,
    make_agency,
    make_client,
    post_alert,
    seizure_body,
)

IDENTITY = {
    "id",
    "kind",
    "status",
    "version",
    "originator_agency_id",
    "addressed_to_agency_id",
    "created_at",
    "updated_at",
    "published_at",
    "withdrawn_at",
    "withdrawal_reason",
}
TOMBSTONE = IDENTITY | {"tombstone"}
REFERENCE = IDENTITY | {"reference", "tlp", "url"}


def _shown(body: dict) -> set[str]:
    """The keys an answer gives a value (false flags and empty lists say nothing)."""
    return {k for k, v in body.items() if v not in (None, False, [], {})}


@pytest.fixture
async def cast(client, db, app) -> dict[str, Actor]:
    hashing = app.state.auth.hashing
    ke, co, jo = [await make_agency(db, country=c) for c in ("KE", "CO", "JO")]
    out = {
        "ke": await make_actor(client, db, hashing, ke, Role.focal_point),
        "ke_admin": await make_actor(client, db, hashing, ke, Role.agency_admin),
        "co": await make_actor(client, db, hashing, co, Role.reader),
        "jo": await make_actor(client, db, hashing, jo, Role.focal_point),
    }
    api_client, secret = await make_client(db, co, "alerts:read")
    token = (await client_login(client, api_client.id, secret))["access_token"]
    out["co_client"] = Actor(agency=co, headers=bearer(token), api_client=api_client)
    return out


async def test_every_view_is_cut_the_same_in_the_list_and_in_get(client, cast):
    ke, co = cast["ke"], cast["co"]
    co_id = str(co.agency.id)
    group = await client.post(
        "/api/v1/sharing-groups",
        json={"name": "Colombia desk", "members": [co_id]},
        headers=cast["ke_admin"].headers,
    )
    assert group.status_code == 201, group.text
    group_id = group.json()["id"]

    def named(tlp: str = "amber", **extra: object) -> dict:
        return {"tlp": tlp, "audience": "recipients", "recipient_agencies": [co_id], **extra}

    later = (utcnow() + timedelta(days=3)).isoformat()
    alerts = {
        "withdrawn": await post_alert(client, ke, seizure_body(handling=named())),
        "red": await post_alert(client, ke, seizure_body(handling=named("red"))),
        "group": await post_alert(
            client,
            ke,
            seizure_body(
                handling={"tlp": "amber", "audience": "recipients", "recipient_groups": [group_id]}
            ),
        ),
        "embargoed": await post_alert(
            client, ke, seizure_body(handling=named(embargo_until=later))
        ),
        "draft": await post_alert(client, ke, seizure_body(handling=named()), publish=False),
    }
    withdrawn = await client.post(
        f"/api/v1/alerts/{alerts['withdrawn']['id']}/withdraw",
        json={"reason": "Entered twice"},
        headers=ke.headers,
    )
    assert withdrawn.status_code == 200
    # Per principal: what each alert is shown as (None: not visible at all).
    expected: dict[str, dict[str, str | None]] = {
        "ke": dict.fromkeys(alerts, "own"),
        "co": {"withdrawn": "tombstone", "red": "content", "group": "content"},
        "co_client": {"withdrawn": "tombstone", "red": "reference", "group": "content"},
        "jo": {},
    }
    for who, views in expected.items():
        headers = cast[who].headers
        page = await client.get("/api/v1/alerts", params={"limit": 100}, headers=headers)
        assert page.status_code == 200, page.text
        listed = {a["id"]: a for a in page.json()["items"]}
        assert set(listed) == {alerts[name]["id"] for name in views}, who
        for name, alert in alerts.items():
            single = await client.get(f"/api/v1/alerts/{alert['id']}", headers=headers)
            view = views.get(name)
            if view is None:
                assert single.status_code == 404, (who, name)
                continue
            body = listed[alert["id"]]
            assert single.json() == body, (who, name)
            where = (who, name, _shown(body))
            if view == "tombstone":
                assert _shown(body) <= TOMBSTONE and body["tombstone"] is True, where
            elif view == "reference":
                assert _shown(body) <= REFERENCE and body["reference"] is True, where
            else:
                assert body["title"] and body["items"], where
                handling = body["handling"]
                lists = (handling["recipient_agencies"], handling["recipient_groups"])
                if view == "own":
                    assert lists == (([], [group_id]) if name == "group" else ([co_id], [])), where
                else:
                    assert lists == (None, None), where


@pytest.mark.parametrize("name", ["tag", "q", "serial"])
async def test_a_nul_in_a_text_filter_is_refused_with_its_parameter(client, cast, name):
    answer = await client.get(
        "/api/v1/alerts", params={name: "AK\x0047"}, headers=cast["ke"].headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["field"] == f"query.{name}"
