"""Red team: audit records that ride on the alert's own statement (`take_unwritten`) or on a
page's children query (a WITH on PostgreSQL), and the joint policy+agencies read.

Each post, batch, replay or page must leave exactly its records, each linked once, and the
chain must verify, whatever fails after the statement that carried them."""

from __future__ import annotations

import uuid
from collections import Counter

from sqlmodel import select

from app.alerts.models import Alert
from app.audit import heads
from app.audit import service as audit
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.db import Database, settle
from tests.agencies.test_separation import make_operator_agency
from tests.factories import make_actor, make_agency, post_alert, seizure_body, trace_body
from tests.triggers import refused_when

BATCH = "/api/v1/alerts:batch"
REFUSED = "Refused after the alert statement"


# An event of an alert whose title is REFUSED (spelled out): a step after the alert's own statement.
_EVENT_OF_REFUSED = (
    "(SELECT title FROM alert WHERE id = NEW.alert_id) = 'Refused after the alert statement'"
)


async def records(db: Database, action: str) -> Counter[str | None]:
    async with db.session() as session:
        rows = await session.exec(select(AuditRecord.object_id).where(AuditRecord.action == action))
        return Counter(rows.all())


async def assert_chain_whole(db: Database) -> None:
    """Every record linked once, gap-free, and the chain verifies."""
    await settle(db.engine)
    async with db.session() as session:
        seqs = (await session.exec(select(AuditRecord.seq))).all()
        verdict = await audit.verify(session, heads.verify_key(db.settings))
    assert None not in seqs, "a committed record was left unlinked"
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # type: ignore[type-var]
    assert verdict.ok and verdict.unchained == 0 and verdict.checked == len(seqs), verdict


async def test_a_post_refused_after_its_alert_statement_leaves_no_record(client, db, world):
    ke = world["KE"]
    async with refused_when(db, "event", _EVENT_OF_REFUSED):
        answer = await client.post(
            "/api/v1/alerts",
            json=seizure_body(title=REFUSED, publish=True),
            headers={**ke.headers, "Idempotency-Key": "refused-once"},
        )
        assert answer.status_code == 409, answer.text
    async with db.session() as session:
        assert not (await session.exec(select(Alert).where(Alert.title == REFUSED))).all()
    assert await records(db, "alert.create") == Counter()
    await assert_chain_whole(db)
    # The same key again, the refusal gone: stored once, recorded once, linked.
    again = await client.post(
        "/api/v1/alerts",
        json=seizure_body(title=REFUSED, publish=True),
        headers={**ke.headers, "Idempotency-Key": "refused-once"},
    )
    assert again.status_code == 201, again.text
    assert await records(db, "alert.create") == Counter({again.json()["id"]: 1})
    await assert_chain_whole(db)


async def test_a_keyed_post_replayed_records_its_create_once(client, db, world):
    ke = world["KE"]
    headers = {**ke.headers, "Idempotency-Key": "replay-me"}
    body = seizure_body(publish=True)
    first = await client.post("/api/v1/alerts", json=body, headers=headers)
    replay = await client.post("/api/v1/alerts", json=body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert await records(db, "alert.create") == Counter({first.json()["id"]: 1})
    # The replay reads the alert again (its record rides on the children's read on PostgreSQL).
    assert await records(db, "alert.read") == Counter({first.json()["id"]: 1})
    await assert_chain_whole(db)


async def test_a_batch_with_a_later_step_refused_records_each_kept_alert_once(client, db, world):
    ke = world["KE"]
    titles = ["One", REFUSED, "Three", "Four"]
    bodies = [seizure_body(title=t, publish=True) for t in titles]
    headers = {**ke.headers, "Idempotency-Key": "batch-refused"}
    async with refused_when(db, "event", _EVENT_OF_REFUSED):
        answer = await client.post(BATCH, json={"alerts": bodies}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert [r["status"] for r in answer.json()["results"]] == [201, 409, 201, 201]
        replay = await client.post(BATCH, json={"alerts": bodies}, headers=headers)
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    kept = [r["alert"]["id"] for r in answer.json()["results"] if r["alert"]]
    assert [r["alert"]["id"] for r in replay.json()["results"] if r["alert"]] == kept
    assert await records(db, "alert.create") == Counter({i: 1 for i in kept})
    await assert_chain_whole(db)


async def test_a_batch_refused_whole_records_nothing_and_the_next_post_links(client, db, world):
    ke = world["KE"]
    bodies = [seizure_body(title=REFUSED, publish=True) for _ in range(3)]
    async with refused_when(db, "event", _EVENT_OF_REFUSED):
        answer = await client.post(BATCH, json={"alerts": bodies}, headers=ke.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 0
    assert await records(db, "alert.create") == Counter()
    posted = await post_alert(client, ke, seizure_body())
    assert await records(db, "alert.create") == Counter({posted["id"]: 1})
    await assert_chain_whole(db)


async def test_a_page_whose_audit_write_is_refused_leaves_no_half_record(client, db, world):
    ke, de = world["KE"], world["DE"]
    for _ in range(2):
        await post_alert(client, de, seizure_body())
    async with refused_when(db, "audit_record", "NEW.action = 'alert.list'"):
        page = await client.get("/api/v1/alerts", headers=ke.headers)
        assert page.status_code >= 400, page.text
        assert await records(db, "alert.list") == Counter()
        # The refusal is of the page's record only: a post still stores and links its own.
        await post_alert(client, ke, seizure_body())
    await assert_chain_whole(db)
    page = await client.get("/api/v1/alerts", headers=ke.headers)
    assert page.status_code == 200 and len(page.json()["items"]) == 3
    assert sum((await records(db, "alert.list")).values()) == 1
    await assert_chain_whole(db)


async def test_a_write_answered_with_a_read_records_both_once(client, db, world):
    """An update's answer reads its children (not written by it): on PostgreSQL the update's
    own staged record rides on that read; it must still be written and linked once."""
    ke = world["KE"]
    posted = await post_alert(client, ke, seizure_body(publish=False))
    changed = await client.patch(
        f"/api/v1/alerts/{posted['id']}",
        json={"title": "Changed title"},
        headers={**ke.headers, "If-Match": f'"{posted["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["items"] and len(changed.json()["items"]) == 2
    updates = await records(db, "alert.update")
    assert updates == Counter({posted["id"]: 1}), updates
    await assert_chain_whole(db)


# --- the joint read of the policy and the agencies named -------------------------------


async def _with_ceiling(client, db, app, agency) -> None:
    admin = await make_actor(client, db, app.state.auth.hashing, agency, Role.agency_admin)
    policy = {
        "kinds": {
            "seized_weapon": {"ceiling": {"widest_tlp": "amber", "widest_audience": "recipients"}},
            "trace_request": {"ceiling": {"widest_tlp": "amber", "widest_audience": "recipients"}},
        }
    }
    saved = await client.put(
        f"/api/v1/agencies/{agency.id}/sharing-policy", json=policy, headers=admin.headers
    )
    assert saved.status_code == 200, saved.text


async def test_a_given_handling_naming_no_agency_still_meets_the_ceiling(client, db, app, world):
    ke = world["KE"]
    await _with_ceiling(client, db, app, ke.agency)
    wide = {"tlp": "green", "audience": "community"}
    refused_ = await client.post(
        "/api/v1/alerts", json=seizure_body(handling=wide), headers=ke.headers
    )
    assert refused_.status_code == 422, refused_.text
    assert "policy.seized_weapon.widest" in refused_.json()["detail"], refused_.text
    # Another agency's policy is not read for this one (no policy: no ceiling).
    de = world["DE"]
    assert (await post_alert(client, de, seizure_body(handling=wide)))["id"]
    assert sum((await records(db, "alert.create")).values()) == 1


async def test_a_given_handling_refuses_unknown_and_operator_agencies(client, db, app, world):
    ke, de = world["KE"], world["DE"]
    operator = await make_operator_agency(db)
    for policy in (False, True):
        if policy:
            await _with_ceiling(client, db, app, ke.agency)
        for named in ([uuid.uuid4()], [de.agency.id, operator.id], [operator.id]):
            handling = {
                "tlp": "amber",
                "audience": "recipients",
                "recipient_agencies": [str(a) for a in named],
            }
            answer = await client.post(
                "/api/v1/alerts", json=seizure_body(handling=handling), headers=ke.headers
            )
            assert answer.status_code == 422, (policy, named, answer.text)
            fields = [e["field"] for e in answer.json()["errors"]]
            assert any("recipient_agencies" in f for f in fields), fields
    assert sum((await records(db, "alert.create")).values()) == 0
    await assert_chain_whole(db)


async def test_a_trace_request_with_given_handling_checks_its_addressee(client, db, app, world):
    ke, de = world["KE"], world["DE"]
    operator = await make_operator_agency(db)
    ghost = await make_agency(db, country="FR")
    await _with_ceiling(client, db, app, ke.agency)
    given = {"tlp": "amber", "audience": "recipients", "recipient_agencies": [str(de.agency.id)]}
    to_operator = await client.post(
        "/api/v1/alerts", json=trace_body(operator, handling=given), headers=ke.headers
    )
    assert to_operator.status_code == 422, to_operator.text
    # The addressee also named as a recipient (asked twice in the joint read).
    both = {**given, "recipient_agencies": [str(de.agency.id)]}
    ok = await client.post(
        "/api/v1/alerts", json=trace_body(de.agency, handling=both), headers=ke.headers
    )
    assert ok.status_code == 201, ok.text
    # An existing agency that is not the operator's, named nowhere else.
    ok2 = await client.post(
        "/api/v1/alerts", json=trace_body(ghost, handling=given), headers=ke.headers
    )
    assert ok2.status_code == 201, ok2.text
    over = {**given, "tlp": "green"}  # within the TLP rules, beyond the policy's ceiling
    too_wide = await client.post(
        "/api/v1/alerts", json=trace_body(de.agency, handling=over), headers=ke.headers
    )
    assert too_wide.status_code == 422, too_wide.text
    assert "policy.trace_request.widest_tlp" in too_wide.json()["detail"]
    assert sum((await records(db, "alert.create")).values()) == 2
    await assert_chain_whole(db)
