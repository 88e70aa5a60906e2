"""The guard dependencies over HTTP: who is answered 404, who 403, and what OpenAPI names.

`VisibleAlert`, `TraceParty`, `HitParty` and `OwnSubscription` load the row of the path
and answer 404 when it is missing *or* the caller may not see it, even when the caller
also lacks the scope the route needs (404 before 403); a caller that may see the row but
may not act on it gets 403. Webhook management is the exception by design: its scope is
checked before anything is loaded (`RequireScope`), so a caller without it learns nothing
either way. The world is built once and each test walks its whole table, collecting every
mismatch before asserting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from sqlmodel import col, select

from app.audit.models import AuditRecord
from app.authz.principal import Role
from tests.factories import Actor, make_world, post_alert, seizure_body, trace_body

MISSING = str(uuid.uuid4())
ITEM = {"category": "small_arm", "make": "Zastava", "calibre": "7.62x39mm"}


@pytest.fixture
async def world(client, db, app) -> dict[str, Actor]:
    """Kenya, Germany and Jordan, each with a focal point, an admin and a reader."""
    roles = (Role.focal_point, Role.agency_admin, Role.reader)
    return await make_world(client, db, app.state.auth.hashing, roles)


@dataclass(frozen=True)
class Rows:
    """One row behind each guard, all Kenya's (the hit and the trace shared with Germany)."""

    draft: str  # Kenya's draft: nobody else sees it
    shared: str  # Kenya's published community alert: everybody sees it
    trace: str  # Kenya asks Germany: Jordan sees neither the alert nor the workflow
    hit: str  # Kenya's and Germany's records of one serial
    sub: str  # Kenya's webhook subscription


async def _rows(client: httpx.AsyncClient, world: dict[str, Actor]) -> Rows:
    def alert(serial: str, **extra: object) -> dict:
        return seizure_body(items=[{**ITEM, "serial_raw": serial}], **extra)

    draft = await post_alert(client, world["KE"], alert("GUARD-D1"), publish=False)
    shared = await post_alert(client, world["KE"], alert("GUARD-H1"))
    await post_alert(client, world["DE"], alert("GUARD-H1", country="DE"))
    trace = await post_alert(
        client, world["KE"], trace_body(world["DE"].agency, items=[{**ITEM, "serial_raw": "T-9"}])
    )
    hits = await client.get("/api/v1/hits", headers=world["DE"].headers)
    (hit,) = hits.json()["items"]
    sub = await client.post(
        "/api/v1/subscriptions",
        json={"url": "https://hooks.ke.example/"},
        headers=world["KE_admin"].headers,
    )
    assert sub.status_code == 201, sub.text
    return Rows(draft["id"], shared["id"], trace["id"], hit["id"], sub.json()["id"])


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # formatted with the Rows' fields and MISSING
    actor: str
    expected: int
    body: dict | None = None


A, T, H, S = "/api/v1/alerts", "/api/v1/trace-requests", "/api/v1/hits", "/api/v1/subscriptions"
CHANGE = {"title": "Changed by a guard test"}
REASON = {"reason": "Withdrawn by a guard test"}

CASES = [
    # VisibleAlert: missing and invisible alike are 404, on every path that takes one.
    *(
        Case(method, f"{A}/{row}{tail}", actor, 404, body)
        for row in ("{MISSING}", "{draft}")
        for actor in ("DE", "DE_reader")
        for method, tail, body in (
            ("GET", "", None),
            ("GET", "/access", None),
            ("GET", "/stix", None),
            ("PATCH", "", CHANGE),
            ("POST", "/publish", None),
            ("POST", "/withdraw", REASON),
        )
    ),
    # Visible, but not the caller's to change: 403 (another agency; no `alerts:write`).
    Case("PATCH", f"{A}/{{shared}}", "DE", 403, CHANGE),
    Case("POST", f"{A}/{{shared}}/withdraw", "DE", 403, REASON),
    Case("PATCH", f"{A}/{{shared}}", "KE_reader", 403, CHANGE),
    Case("POST", f"{A}/{{draft}}/publish", "KE_reader", 403),
    Case("GET", f"{A}/{{shared}}", "DE_reader", 200),
    Case("GET", f"{A}/{{shared}}/access", "JO", 200),
    # TraceParty: a party of a visible trace request, or 404 (an alert that is no trace
    # request too), before `traces:write` or the step's side is looked at.
    *(
        Case(method, f"{T}/{row}{tail}", actor, 404, body)
        for row in ("{MISSING}", "{trace}", "{shared}")
        for actor in ("JO", "JO_reader")
        for method, tail, body in (
            ("GET", "", None),
            ("POST", "/acknowledge", None),
            ("POST", "/withdraw", REASON),
        )
    ),
    Case("POST", f"{T}/{{trace}}/acknowledge", "DE_reader", 403),  # no `traces:write`
    Case("POST", f"{T}/{{trace}}/acknowledge", "KE", 403),  # the requester's side
    Case("POST", f"{T}/{{trace}}/withdraw", "DE", 403, REASON),  # the requested agency's
    Case("GET", f"{T}/{{trace}}", "DE_reader", 200),
    # HitParty: one of the hit's two sides, or 404, before `alerts:write` or the role.
    *(
        Case(method, f"{H}/{row}{tail}", actor, 404)
        for row in ("{MISSING}", "{hit}")
        for actor in ("JO", "JO_reader")
        for method, tail in (("GET", ""), ("POST", "/confirm"), ("POST", "/disclose"))
    ),
    Case("POST", f"{H}/{{hit}}/confirm", "DE_reader", 403),
    Case("POST", f"{H}/{{hit}}/disclose", "DE_reader", 403),
    Case("GET", f"{H}/{{hit}}", "DE_reader", 200),
    # OwnSubscription: the caller's agency's, or 404 ...
    *(
        Case(method, f"{S}/{row}{tail}", "DE_admin", 404, body)
        for row in ("{MISSING}", "{sub}")
        for method, tail, body in (
            ("GET", "", None),
            ("PATCH", "", {"description": "x"}),
            ("DELETE", "", None),
            ("GET", "/deliveries", None),
            ("POST", "/ping", None),
            ("POST", "/rotate-secret", None),
            ("POST", "/replay", {"since": "2026-01-01T00:00:00Z"}),
        )
    ),
    # ... after `webhooks:manage`, which is checked first: 403 whatever the id.
    *(
        Case("GET", f"{S}/{row}", actor, 403)
        for row in ("{MISSING}", "{sub}")
        for actor in ("KE", "DE")
    ),
    Case("GET", f"{S}/{{sub}}", "KE_admin", 200),
]


async def test_each_guard_answers_404_before_403(client, world):
    rows = await _rows(client, world)
    ids = {**vars(rows), "MISSING": MISSING}
    wrong = []
    for case in CASES:
        path = case.path.format(**ids)
        headers = {**world[case.actor].headers, "If-Match": '"1"'}
        answer = await client.request(case.method, path, json=case.body, headers=headers)
        if answer.status_code != case.expected:
            wrong.append(
                f"{case.method} {case.path} as {case.actor}: expected {case.expected}, "
                f"got {answer.status_code} {answer.text[:120]}"
            )
    assert not wrong, "\n".join(wrong)


async def _reads(db, alert_id: str) -> list[str]:
    async with db.session() as session:
        query = (
            select(AuditRecord.action)
            .where(AuditRecord.object_id == alert_id, col(AuditRecord.action).like("alert.%"))
            .order_by(col(AuditRecord.seq))
        )
        return list((await session.exec(query)).all())


async def test_a_guarded_read_is_recorded_once_and_a_refused_one_not_at_all(client, db, world):
    rows = await _rows(client, world)
    before = await _reads(db, rows.shared)
    assert (await client.get(f"{A}/{rows.shared}", headers=world["DE"].headers)).is_success
    assert (await client.get(f"{A}/{rows.shared}/access", headers=world["DE"].headers)).is_success
    refused = await client.get(f"{A}/{rows.draft}", headers=world["DE"].headers)
    assert refused.status_code == 404
    assert await _reads(db, rows.shared) == [*before, "alert.read"]
    assert "alert.read" not in await _reads(db, rows.draft)


# Each guarded route names the scopes it needs: the one its guard checks first, and the
# one its service checks once the row is found.
SECURITY = {
    ("get", "/api/v1/alerts"): ["alerts:read"],
    ("post", "/api/v1/alerts"): ["alerts:write"],
    ("get", "/api/v1/alerts/{alert_id}"): ["alerts:read"],
    ("get", "/api/v1/alerts/{alert_id}/stix"): ["alerts:read"],
    ("patch", "/api/v1/alerts/{alert_id}"): ["alerts:read", "alerts:write"],
    ("post", "/api/v1/alerts/{alert_id}/withdraw"): ["alerts:read", "alerts:write"],
    ("get", "/api/v1/trace-requests/{alert_id}"): ["alerts:read"],
    ("post", "/api/v1/trace-requests/{alert_id}/respond"): ["alerts:read", "traces:write"],
    ("get", "/api/v1/hits/{hit_id}"): ["alerts:read"],
    ("post", "/api/v1/hits/{hit_id}/confirm"): ["alerts:read", "alerts:write"],
    ("get", "/api/v1/subscriptions/{sub_id}"): ["webhooks:manage"],
    ("post", "/api/v1/deliveries/{delivery_id}/retry"): ["webhooks:manage"],
    ("get", "/api/v1/me"): [],
}


def test_the_guarded_routes_name_their_scopes_in_openapi(app):
    paths = app.openapi()["paths"]
    found = {key: paths[key[1]][key[0]]["security"] for key in SECURITY}
    assert found == {key: [{"OAuth2": scopes}] for key, scopes in SECURITY.items()}
