"""What one post says to the database on its own path: the policy with the agencies it
names in one read, and no audit linking before the answer."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

from app.authz.principal import Role
from tests.factories import make_actor, make_agency, seizure_body
from tests.sqllog import statements


def request_statements(db) -> AbstractContextManager[list[str]]:
    """The statements run in this task (the in-process request), not by background work."""
    task = asyncio.current_task()
    return statements(db, lambda _text: asyncio.current_task() is task)


async def test_a_post_reads_its_policy_and_named_agencies_at_once(client, db, app, backend):
    hashing = app.state.auth.hashing
    ke = await make_actor(
        client, db, hashing, await make_agency(db, country="KE"), Role.focal_point
    )
    named = [await make_agency(db, country=c) for c in ("DE", "JO", "CO")]
    policy = {
        "kinds": {
            "seized_weapon": {
                "ceiling": {"widest_tlp": "amber", "widest_audience": "recipients"},
            }
        }
    }
    saved = await client.put(
        f"/api/v1/agencies/{ke.agency.id}/sharing-policy",
        json=policy,
        headers=(await make_actor(client, db, hashing, ke.agency, Role.agency_admin)).headers,
    )
    assert saved.status_code == 200, saved.text
    handling = {
        "tlp": "amber",
        "audience": "recipients",
        "recipient_agencies": [str(a.id) for a in named],
    }
    with request_statements(db) as seen:
        posted = await client.post(
            "/api/v1/alerts", json=seizure_body(handling=handling), headers=ke.headers
        )
    assert posted.status_code == 201, posted.text
    policy_reads = [s for s in seen if "FROM sharing_policy" in s]
    assert len(policy_reads) == 1 and "agency.is_operator" in policy_reads[0]
    assert not [s for s in seen if s.startswith("SELECT agency.id, agency.is_operator")]
    if backend == "postgres":  # SQLite links its chain in place, before the commit
        assert not [s for s in seen if "pg_advisory_xact_lock" in s or "UPDATE audit_record" in s]
        assert len(seen) <= 6, "\n".join(seen)

    # The ceiling read in the same statement still refuses what exceeds it.
    too_wide = {**handling, "tlp": "green"}
    refused = await client.post(
        "/api/v1/alerts", json=seizure_body(handling=too_wide), headers=ke.headers
    )
    assert refused.status_code == 422
    missing = {**handling, "recipient_agencies": [str(named[0].id), str(ke.user.id)]}
    refused = await client.post(
        "/api/v1/alerts", json=seizure_body(handling=missing), headers=ke.headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.handling.recipient_agencies.1"
