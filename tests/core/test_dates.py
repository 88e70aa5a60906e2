"""Dates at the edges of what UTC can hold: a 4xx naming the field, never a 500.

`9999-12-31T23:59:59-14:00` and `0001-01-01T00:00:00+14:00` are well-formed RFC 3339
date-times whose UTC value a datetime cannot hold. Every date-time the API reads (bodies,
query parameters, TAXII filters, cursors, stored policy defaults) refuses them by name.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from sqlmodel import func, select

from app.alerts.models import Alert
from app.authz.principal import Role
from app.interop.taxii_http import TAXII_MEDIA_TYPE
from app.sharing.models import SharingPolicy
from tests.factories import make_actor, make_agency, post_alert, seizure_body, trace_body

PROBLEM = "application/problem+json"
OVERFLOWING = ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00")
# Also refused: no such year or second or offset, no offset at all, Unix time, a date only.
MALFORMED = (
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00",
    "1700000000",
    "2026-01-01",
)
ALL_COLLECTION = "/taxii2/api/collections/"


@pytest.fixture
async def world(client, db, app):
    hashing = app.state.auth.hashing
    home = await make_agency(db, country="KE")
    other = await make_agency(db, country="UG")
    author = await make_actor(client, db, hashing, home, Role.focal_point)
    admin = await make_actor(client, db, hashing, home, Role.agency_admin)
    return {"home": home, "other": other, "author": author, "admin": admin}


async def _alert_count(db) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(Alert))).one()


def _assert_refused(answer, field: str, status: int = 422) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    fields = [e["field"] for e in answer.json()["errors"]]
    assert field in fields, fields


def _set(body: dict, path: str, value: object) -> dict:
    node = body
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return body


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("seized_weapon", "occurred_at", "body.seized_weapon.occurred_at"),
        ("seized_weapon", "handling.embargo_until", "body.seized_weapon.handling.embargo_until"),
        ("seized_weapon", "details.seized_at", "body.seized_weapon.details.seized_at"),
        ("trace_request", "details.ack_due", "body.trace_request.details.ack_due"),
        ("trace_request", "details.response_due", "body.trace_request.details.response_due"),
    ],
)
async def test_posted_dates_out_of_utc_range_are_422(client, db, world, kind, path, field):
    for value in (*OVERFLOWING, *MALFORMED):
        for publish in (False, True):
            base = seizure_body() if kind == "seized_weapon" else trace_body(world["other"])
            body = _set({**base, "publish": publish}, path, value)
            answer = await client.post("/api/v1/alerts", json=body, headers=world["author"].headers)
            _assert_refused(answer, field)
    assert await _alert_count(db) == 0


async def test_posted_dates_that_are_numbers_are_422(client, db, world):
    for value in (1_700_000_000, 253_402_300_799, -1, 1e20, True):
        body = {**seizure_body(), "occurred_at": value}
        answer = await client.post("/api/v1/alerts", json=body, headers=world["author"].headers)
        _assert_refused(answer, "body.seized_weapon.occurred_at")
    assert await _alert_count(db) == 0


async def test_patched_dates_out_of_utc_range_are_422(client, db, world):
    seizure = await post_alert(client, world["author"], seizure_body(), publish=False)
    trace = await post_alert(client, world["author"], trace_body(world["other"]), publish=False)
    cases = [
        (seizure, {"occurred_at": "X"}, "body.occurred_at"),
        (
            seizure,
            {"handling": {"tlp": "green", "audience": "community", "embargo_until": "X"}},
            "body.handling.embargo_until",
        ),
        (trace, {"details": {**trace["details"], "ack_due": "X"}}, "body.details.ack_due"),
        (
            trace,
            {"details": {**trace["details"], "response_due": "X"}},
            "body.details.response_due",
        ),
    ]
    for alert, change, field in cases:
        for value in OVERFLOWING:
            body = json.loads(json.dumps(change).replace('"X"', json.dumps(value)))
            answer = await client.patch(
                f"/api/v1/alerts/{alert['id']}",
                json=body,
                headers={**world["author"].headers, "If-Match": f'"{alert["version"]}"'},
            )
            _assert_refused(answer, field)
    for alert in (seizure, trace):
        again = await client.get(f"/api/v1/alerts/{alert['id']}", headers=world["author"].headers)
        assert again.json()["version"] == alert["version"]


@pytest.mark.parametrize("name", ["occurred_since", "occurred_until", "updated_since"])
async def test_alert_list_filters_out_of_utc_range_are_422(client, world, name):
    for value in (*OVERFLOWING, *MALFORMED):
        answer = await client.get(
            "/api/v1/alerts", params={name: value}, headers=world["author"].headers
        )
        _assert_refused(answer, f"query.{name}")


@pytest.mark.parametrize("name", ["since", "until"])
async def test_audit_filters_out_of_utc_range_are_422(client, world, name):
    for value in OVERFLOWING:
        answer = await client.get(
            "/api/v1/audit", params={name: value}, headers=world["admin"].headers
        )
        _assert_refused(answer, f"query.{name}")


async def test_replay_since_out_of_utc_range_is_422(client, world):
    created = await client.post(
        "/api/v1/subscriptions",
        json={"url": "https://hooks.example.org/tracewire"},
        headers=world["admin"].headers,
    )
    assert created.status_code == 201, created.text
    for value in OVERFLOWING:
        answer = await client.post(
            f"/api/v1/subscriptions/{created.json()['id']}/replay",
            json={"since": value},
            headers=world["admin"].headers,
        )
        _assert_refused(answer, "body.since")


async def test_audience_preview_embargo_out_of_utc_range_is_422(client, world):
    for value in OVERFLOWING:
        answer = await client.post(
            "/api/v1/alerts/preview-audience",
            json={
                "kind": "seized_weapon",
                "handling": {"tlp": "green", "audience": "community", "embargo_until": value},
            },
            headers=world["author"].headers,
        )
        _assert_refused(answer, "body.handling.embargo_until")


async def test_forged_cursor_with_an_overflowing_date_is_422(client, world):
    for value in OVERFLOWING:
        raw = json.dumps([value, str(uuid.uuid4())]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        for path in ("/api/v1/alerts", "/api/v1/trace-requests"):
            answer = await client.get(
                path, params={"cursor": cursor}, headers=world["author"].headers
            )
            _assert_refused(answer, "query.cursor")


async def test_forged_cursor_with_an_id_that_is_no_string_is_422(client, world):
    when = "2026-01-01T00:00:00+00:00"
    for forged_id in (123, None, ["x"], {"a": 1}, 1.5):
        raw = json.dumps([when, forged_id]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        for path in ("/api/v1/alerts", "/api/v1/trace-requests"):
            answer = await client.get(
                path, params={"cursor": cursor}, headers=world["author"].headers
            )
            _assert_refused(answer, "query.cursor")


async def test_taxii_dates_out_of_utc_range_are_taxii_errors(client, world):
    await post_alert(client, world["author"], seizure_body())
    headers = {**world["author"].headers, "Accept": TAXII_MEDIA_TYPE}
    collections = (await client.get(ALL_COLLECTION, headers=headers)).json()["collections"]
    objects = f"{ALL_COLLECTION}{collections[0]['id']}/objects/"
    for name in ("added_after", "match[version]"):
        for value in OVERFLOWING:
            for path in (objects, objects.replace("objects/", "manifest/")):
                answer = await client.get(path, params={name: value}, headers=headers)
                assert answer.status_code == 400, answer.text
                assert answer.headers["content-type"] == TAXII_MEDIA_TYPE
                body = answer.json()
                assert body["http_status"] == "400"
                assert name in [
                    e["field"].removeprefix("query.") for e in body["details"]["errors"]
                ], body


# --- the sharing policy's default ---------------------------------------------------------


async def test_policy_default_with_an_overflowing_embargo_is_refused_at_write(client, world):
    agency_id = world["home"].id
    for value in OVERFLOWING:
        answer = await client.put(
            f"/api/v1/agencies/{agency_id}/sharing-policy",
            json={
                "kinds": {
                    "seized_weapon": {
                        "default": {"tlp": "green", "audience": "community", "embargo_until": value}
                    }
                }
            },
            headers=world["admin"].headers,
        )
        _assert_refused(answer, "body.kinds.seized_weapon.default.embargo_until")
    policy = await client.get(
        f"/api/v1/agencies/{agency_id}/sharing-policy", headers=world["admin"].headers
    )
    assert policy.status_code == 200 and policy.json()["kinds"] == {}


async def _store_policy(db, agency_id, embargo_until: str) -> None:
    """A policy row as an earlier release could have stored it, past today's checks."""
    rules = {
        "kinds": {
            "seized_weapon": {
                "default": {
                    "tlp": "green",
                    "audience": "community",
                    "recipient_agencies": [],
                    "recipient_groups": [],
                    "embargo_until": embargo_until,
                    "handling_codes": [],
                },
                "ceiling": {"widest_tlp": "amber", "allow_groups": True, "addressee_only": False},
            }
        }
    }
    async with db.session() as session:
        session.add(SharingPolicy(agency_id=agency_id, rules=rules))
        await session.commit()


async def test_stored_overflowing_default_never_gives_a_500_at_post_time(client, db, world):
    await _store_policy(db, world["home"].id, OVERFLOWING[0])
    author = world["author"]
    body = seizure_body()
    del body["handling"]
    for publish in (False, True):
        relying = await client.post(
            "/api/v1/alerts", json={**body, "publish": publish}, headers=author.headers
        )
        _assert_refused(relying, "body.handling")
        assert "sharing policy" in relying.json()["detail"]
    preview = await client.post(
        "/api/v1/alerts/preview-audience", json={"kind": "seized_weapon"}, headers=author.headers
    )
    _assert_refused(preview, "body.handling")
    assert await _alert_count(db) == 0
    # The policy's ceiling still binds a post that gives its own handling ...
    too_wide = await client.post(
        "/api/v1/alerts",
        json={**body, "handling": {"tlp": "clear", "audience": "community"}},
        headers=author.headers,
    )
    assert too_wide.status_code == 422, too_wide.text
    # ... which is otherwise posted as usual, and the policy can still be read and replaced.
    own = {"tlp": "amber", "audience": "recipients", "recipient_agencies": [str(world["other"].id)]}
    await post_alert(client, author, {**body, "handling": own})
    url = f"/api/v1/agencies/{world['home'].id}/sharing-policy"
    read = await client.get(url, headers=world["admin"].headers)
    assert read.status_code == 200, read.text
    assert read.json()["kinds"]["seized_weapon"]["default"] is None
    assert read.json()["kinds"]["seized_weapon"]["ceiling"]["widest_tlp"] == "amber"
    fixed = {"default": own}
    replaced = await client.put(
        url, json={"kinds": {"seized_weapon": fixed}}, headers=world["admin"].headers
    )
    assert replaced.status_code == 200, replaced.text
    await post_alert(client, author, body)


# --- what stays valid ---------------------------------------------------------------------


async def test_valid_dates_at_the_edges_are_accepted_and_normalised_to_utc(client, world):
    author = world["author"]
    body = seizure_body(
        occurred_at="2026-11-20T10:30:00+02:00",
        handling={
            "tlp": "green",
            "audience": "community",
            "embargo_until": "9999-12-31T23:59:59.999999Z",
        },
    )
    body["details"]["seized_at"] = "2026-11-20T09:00:00.123456789-05:00"
    alert = await post_alert(client, author, body)
    assert alert["occurred_at"] == "2026-11-20T08:30:00Z"
    assert alert["handling"]["embargo_until"] == "9999-12-31T23:59:59.999999Z"
    assert alert["details"]["seized_at"] == "2026-11-20T14:00:00.123456Z"
    trace = trace_body(world["other"])
    trace["details"]["ack_due"] = "9999-12-30T00:00:00+14:00"
    trace["details"]["response_due"] = "9999-12-31T23:59:59-00:00"
    posted = await post_alert(client, author, trace)
    assert posted["details"]["ack_due"] == "9999-12-29T10:00:00Z"
    found = await client.get(f"/api/v1/trace-requests/{posted['id']}", headers=author.headers)
    assert found.json()["response_due"] == "9999-12-31T23:59:59Z"
    for value in ("0001-01-01T00:00:00Z", "0001-01-01T13:59:59+13:59", "9999-12-31T23:59:59Z"):
        listed = await client.get(
            "/api/v1/alerts", params={"occurred_since": value}, headers=author.headers
        )
        assert listed.status_code == 200, listed.text


async def test_stored_draft_with_an_overflowing_deadline_is_422_at_publish(client, db, world):
    draft = await post_alert(client, world["author"], trace_body(world["other"]), publish=False)
    async with db.session() as session:  # as an earlier release could have stored it
        alert = await session.get(Alert, uuid.UUID(draft["id"]))
        alert.details = {**alert.details, "ack_due": OVERFLOWING[0]}
        session.add(alert)
        await session.commit()
    answer = await client.post(
        f"/api/v1/alerts/{draft['id']}/publish",
        headers={**world["author"].headers, "If-Match": f'"{draft["version"]}"'},
    )
    _assert_refused(answer, "body.details.ack_due")
    again = await client.get(f"/api/v1/alerts/{draft['id']}", headers=world["author"].headers)
    assert again.json()["status"] == "draft"


async def test_stix_timestamps_keep_four_digit_years(client, world):
    from tests.interop.helpers import validate

    alert = await post_alert(
        client, world["author"], seizure_body(occurred_at="0001-01-01T00:00:00+00:00")
    )
    bundle = await client.get(f"/api/v1/alerts/{alert['id']}/stix", headers=world["author"].headers)
    assert bundle.status_code == 200, bundle.text
    report = next(o for o in bundle.json()["objects"] if o["type"] == "report")
    assert "0001-01-01T00:00:00.000Z" in json.dumps(report)
    validate(bundle.json())
