"""What a personal access token reads is exactly what its user reads; what it does is
bounded by its scopes (403 beyond them), whatever its user's role would allow."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.agencies.models import Agency
from app.alerts.models import Alert
from app.authz.principal import ActorKind, Role
from tests.factories import (
    Actor,
    bearer,
    make_actor,
    make_agency,
    post_alert,
    seizure_body,
)
from tests.secrets_seen import remember

TOKENS = "/api/v1/me/tokens"


async def _pat(client, headers: dict[str, str], scopes: list[str]) -> dict[str, str]:
    answer = await client.post(
        TOKENS, json={"name": "script", "scopes": scopes, "expires_in_days": 30}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    remember(answer.json()["token"])
    return bearer(answer.json()["token"])


@dataclass
class Traffic:
    ke: Agency
    reader: Actor
    focal: Actor
    admin: Actor
    community: dict
    restricted: dict  # amber, to Jordan only: Kenya must not see it
    red_to_ke: dict
    own: dict  # Kenya's own


@pytest.fixture
async def traffic(client, db, app) -> Traffic:
    hashing = app.state.auth.hashing
    ke, de, jo = [await make_agency(db, country=c) for c in ("KE", "DE", "JO")]
    reader = await make_actor(client, db, hashing, ke, Role.reader)
    focal = await make_actor(client, db, hashing, ke, Role.focal_point)
    admin = await make_actor(client, db, hashing, ke, Role.agency_admin)
    de_focal = await make_actor(client, db, hashing, de, Role.focal_point)
    community = await post_alert(client, de_focal, seizure_body(title="Community seizure"))
    restricted = await post_alert(
        client,
        de_focal,
        seizure_body(
            title="For Jordan only",
            handling={"tlp": "amber", "audience": "recipients", "recipient_agencies": [str(jo.id)]},
        ),
    )
    red = await post_alert(
        client,
        de_focal,
        seizure_body(
            title="Red, for Kenya",
            handling={"tlp": "red", "audience": "recipients", "recipient_agencies": [str(ke.id)]},
        ),
    )
    own = await post_alert(client, focal, seizure_body(title="Kenya's own"))
    return Traffic(ke, reader, focal, admin, community, restricted, red, own)


@pytest.mark.parametrize("role", ["reader", "focal", "admin"])
async def test_a_token_reads_exactly_what_its_user_reads(client, traffic: Traffic, role: str):
    login = getattr(traffic, role).headers
    token = await _pat(client, login, ["alerts:read"])
    as_user = await client.get("/api/v1/alerts", params={"limit": 100}, headers=login)
    as_token = await client.get("/api/v1/alerts", params={"limit": 100}, headers=token)
    assert as_user.status_code == as_token.status_code == 200
    ids = [a["id"] for a in as_user.json()["items"]]
    assert ids == [a["id"] for a in as_token.json()["items"]]
    assert traffic.restricted["id"] not in ids  # the check below would pass with nothing
    assert {traffic.community["id"], traffic.red_to_ke["id"], traffic.own["id"]} <= set(ids)
    for alert in (traffic.community, traffic.red_to_ke, traffic.own):
        one = await client.get(f"/api/v1/alerts/{alert['id']}", headers=login)
        other = await client.get(f"/api/v1/alerts/{alert['id']}", headers=token)
        assert one.status_code == other.status_code == 200
        assert one.json() == other.json()
        why = (await client.get(f"/api/v1/alerts/{alert['id']}/access", headers=token)).json()
        user_why = (await client.get(f"/api/v1/alerts/{alert['id']}/access", headers=login)).json()
        # The same rule grants both; only the token, without `alerts:write`, may not edit.
        assert why.pop("can_edit") is False
        user_why.pop("can_edit")
        assert why == user_why
    for headers in (login, token):
        hidden = await client.get(f"/api/v1/alerts/{traffic.restricted['id']}", headers=headers)
        assert hidden.status_code == 404
        assert (
            await client.get(f"/api/v1/alerts/{traffic.restricted['id']}/stix", headers=headers)
        ).status_code == 404


async def test_a_token_without_alerts_read_reads_nothing(client, traffic: Traffic):
    token = await _pat(client, traffic.admin.headers, ["webhooks:manage"])
    assert (await client.get("/api/v1/alerts", headers=token)).status_code == 403
    answer = await client.get(f"/api/v1/alerts/{traffic.own['id']}", headers=token)
    assert answer.status_code in (403, 404)
    # Nor through a subscription, which would deliver what its managing user reads.
    sub = await client.post(
        "/api/v1/subscriptions", json={"url": "https://example.org/hook"}, headers=token
    )
    assert sub.status_code == 403, sub.text


async def test_a_token_with_webhooks_manage_and_alerts_read_manages_subscriptions(
    client, traffic: Traffic
):
    token = await _pat(client, traffic.admin.headers, ["alerts:read", "webhooks:manage"])
    sub = await client.post(
        "/api/v1/subscriptions", json={"url": "https://example.org/hook"}, headers=token
    )
    assert sub.status_code == 201, sub.text
    remember(sub.json()["secret"])
    listed = await client.get("/api/v1/subscriptions", headers=token)
    assert [s["id"] for s in listed.json()["items"]] == [sub.json()["id"]]
    # Still no administration: the scope is webhooks, not the role.
    users = await client.get(f"/api/v1/agencies/{traffic.ke.id}/users", headers=token)
    assert users.status_code == 403


async def test_writing_is_outside_a_read_only_token(client, traffic: Traffic):
    login = traffic.focal.headers
    read_only = await _pat(client, login, ["alerts:read"])
    writer = await _pat(client, login, ["alerts:read", "alerts:write"])
    body = seizure_body(title="Posted by a script")
    refused = await client.post("/api/v1/alerts", json=body, headers=read_only)
    assert refused.status_code == 403
    assert "token" in refused.json()["detail"] and "alerts:write" in refused.json()["detail"]
    assert (await client.post("/api/v1/alerts", json=body, headers=writer)).status_code == 201
    # Editing its agency's alert is writing too.
    alert = traffic.own
    patch = {"title": "Renamed by a script"}
    etag = {"If-Match": f'"{alert["version"]}"'}
    refused = await client.patch(
        f"/api/v1/alerts/{alert['id']}", json=patch, headers=read_only | etag
    )
    assert refused.status_code == 403
    edited = await client.patch(f"/api/v1/alerts/{alert['id']}", json=patch, headers=writer | etag)
    assert edited.status_code == 200, edited.text


async def test_a_token_s_alert_is_its_user_s(client, db, traffic: Traffic):
    token = await _pat(client, traffic.focal.headers, ["alerts:read", "alerts:write"])
    posted = await client.post(
        "/api/v1/alerts", json=seizure_body(title="From cron", publish=True), headers=token
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["originator_agency_id"] == str(traffic.ke.id)
    async with db.session() as session:
        alert = await session.get(Alert, uuid.UUID(posted.json()["id"]))
    assert alert is not None and traffic.focal.user is not None
    assert (alert.created_by, alert.created_by_kind) == (traffic.focal.user.id, ActorKind.user)
