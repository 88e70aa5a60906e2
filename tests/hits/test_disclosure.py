"""What each side of a hit learns (DESIGN §5): embargo, blind hits, disclosure, no tier signal."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from app.alerts.models import Alert
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.types import utcnow
from app.events.models import Event
from app.hits import matching as hits
from app.hits.models import Hit, PendingMatch
from app.webhooks.models import Delivery
from app.worker import DEFAULT_SCHEDULES, Worker
from tests.factories import make_world, post_alert, seizure_body

AKM = {"category": "small_arm", "make": "Kalashnikov Concern", "calibre": "7.62x39mm"}


@pytest.fixture
async def world(client, db, app):
    roles = (Role.focal_point, Role.reader, Role.agency_admin)
    return await make_world(client, db, app.state.auth.hashing, roles)


def _alert(serial: str, handling: dict | None = None, **item: object) -> dict:
    body = seizure_body(items=[{**AKM, "serial_raw": serial, **item}])
    if handling is not None:
        body["handling"] = handling
    return body


async def _hits(client, actor) -> list[dict]:
    answer = await client.get("/api/v1/hits", headers=actor.headers)
    assert answer.status_code == 200
    return answer.json()["items"]


async def _hit_events(db) -> list[Event]:
    async with db.session() as session:
        query = select(Event).where(Event.type == "hit.created")
        return list((await session.exec(query)).all())


async def _told(db, agency_id: uuid.UUID) -> list[dict]:
    """The `hit.created` data recorded for one agency."""
    return [e.data for e in await _hit_events(db) if agency_id in e.agency_ids]


async def _subscribe(client, admin) -> str:
    answer = await client.post(
        "/api/v1/subscriptions",
        json={"url": f"https://hooks-{uuid.uuid4().hex[:6]}.example/in"},
        headers=admin.headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


async def _hit_deliveries(db, subscription_id: str) -> list[Delivery]:
    async with db.session() as session:
        query = select(Delivery).where(
            Delivery.subscription_id == uuid.UUID(subscription_id),
            Delivery.event_type == "hit.created",
        )
        return list((await session.exec(query)).all())


async def _run_release_job(db) -> int:
    worker = Worker(db, DEFAULT_SCHEDULES)
    job = next(s for s in worker.schedules if s.name == "match_released_alerts")
    return await worker.run_once(job)


async def _lift_embargo(db, alert_id: str) -> None:
    """Time passes: the embargo now lies in the past."""
    async with db.session() as session:
        alert = await session.get(Alert, uuid.UUID(alert_id))
        alert.embargo_until = utcnow() - timedelta(seconds=1)
        session.add(alert)
        await session.commit()


# --- embargo ----------------------------------------------------------------------------


async def test_an_embargoed_alert_is_matched_only_when_the_embargo_passes(client, db, world):
    later = (utcnow() + timedelta(hours=2)).isoformat()
    embargoed = await post_alert(
        client,
        world["KE"],
        _alert("EMB-1001", {"tlp": "green", "audience": "community", "embargo_until": later}),
    )
    await post_alert(client, world["DE"], _alert("EMB-1001"))
    # Nothing while the embargo holds: no hit on either side, nobody told.
    assert await _hits(client, world["DE"]) == []
    assert await _hits(client, world["KE"]) == []
    assert await _hit_events(db) == []
    assert await _run_release_job(db) == 0
    assert await _hits(client, world["DE"]) == []

    await _lift_embargo(db, embargoed["id"])
    assert await _run_release_job(db) == 1
    de_view = await _hits(client, world["DE"])
    assert [h["tier"] for h in de_view] == ["strong"]
    assert de_view[0]["other"]["alert_id"] == embargoed["id"]
    assert len(await _hits(client, world["KE"])) == 1
    assert len(await _hit_events(db)) == 2  # one per side
    # Exactly once: a second run finds nothing held and tells nobody again.
    assert await _run_release_job(db) == 0
    assert len(await _hit_events(db)) == 2


async def test_an_embargo_moved_earlier_is_matched_at_the_next_run(client, db, world):
    later = (utcnow() + timedelta(hours=2)).isoformat()
    embargoed = await post_alert(
        client,
        world["KE"],
        _alert("EMB-2002", {"tlp": "green", "audience": "community", "embargo_until": later}),
    )
    await post_alert(client, world["DE"], _alert("EMB-2002"))
    earlier = (utcnow() - timedelta(minutes=1)).isoformat()
    changed = await client.patch(
        f"/api/v1/alerts/{embargoed['id']}",
        json={"handling": {"tlp": "green", "audience": "community", "embargo_until": earlier}},
        headers={**world["KE"].headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    assert await _run_release_job(db) == 1
    assert len(await _hits(client, world["DE"])) == 1


async def test_an_alert_withdrawn_under_embargo_is_never_matched(client, db, world):
    later = (utcnow() + timedelta(hours=2)).isoformat()
    embargoed = await post_alert(
        client,
        world["KE"],
        _alert("EMB-3003", {"tlp": "green", "audience": "community", "embargo_until": later}),
    )
    await post_alert(client, world["DE"], _alert("EMB-3003"))
    withdrawn = await client.post(
        f"/api/v1/alerts/{embargoed['id']}/withdraw",
        json={"reason": "Operational reasons"},
        headers=world["KE"].headers,
    )
    assert withdrawn.status_code == 200
    await _lift_embargo(db, embargoed["id"])
    assert await _run_release_job(db) == 1  # the held row is dropped
    assert await _hits(client, world["DE"]) == [] == await _hits(client, world["KE"])
    assert await _hit_events(db) == []


async def test_two_workers_release_two_matching_alerts_into_one_hit(client, db, world, backend):
    if backend != "postgres":
        pytest.skip("parallel claims need PostgreSQL's row locks (SQLite has one writer)")
    later = (utcnow() + timedelta(hours=2)).isoformat()
    held = {"tlp": "green", "audience": "community", "embargo_until": later}
    one = await post_alert(client, world["KE"], _alert("RACE-77", held))
    two = await post_alert(client, world["DE"], _alert("RACE-77", held))
    await _lift_embargo(db, one["id"])
    await _lift_embargo(db, two["id"])

    async def run() -> int:
        async with db.session() as session:
            # One held alert per run, so that the two runs take one alert each.
            count = await hits.match_released(session, batch=1)
            await session.commit()
            return count

    for _ in range(3):
        await asyncio.gather(run(), run())
    async with db.session() as session:
        assert len((await session.exec(select(Hit))).all()) == 1
        assert (await session.exec(select(PendingMatch))).all() == []
    assert len(await _hit_events(db)) == 2
    assert len(await _hits(client, world["DE"])) == 1 == len(await _hits(client, world["KE"]))


# --- blind hits and disclosure ----------------------------------------------------------


def _blind_handlings(world) -> dict[str, dict]:
    jo = str(world["JO"].agency.id)
    return {
        "red": {"tlp": "red", "audience": "recipients", "recipient_agencies": [jo]},
        "amber+strict": {
            "tlp": "amber+strict",
            "audience": "recipients",
            "recipient_agencies": [jo],
        },
        "originator-only": {"tlp": "amber", "audience": "originator"},
    }


@pytest.mark.parametrize("handling", ["red", "amber+strict", "originator-only"])
async def test_a_blind_hit_tells_only_the_owner_until_it_discloses(client, db, world, handling):
    ke, de = world["KE"], world["DE"]
    de_hooks = await _subscribe(client, world["DE_admin"])
    ke_hooks = await _subscribe(client, world["KE_admin"])
    secret = await post_alert(
        client, ke, _alert("BL-4040", _blind_handlings(world)[handling], model="SECRET-M")
    )
    open_alert = await post_alert(client, de, _alert("BL-4040"))

    # The owner is told, with the real tier (it may see the German record).
    ke_view = await _hits(client, ke)
    assert [h["tier"] for h in ke_view] == ["strong"]
    assert ke_view[0]["other"]["alert_id"] == open_alert["id"]
    assert ke_view[0]["blind_to_other"] is True
    hit_id = ke_view[0]["id"]
    assert [d["tier"] for d in await _told(db, ke.agency.id)] == ["strong"]
    assert len(await _hit_deliveries(db, ke_hooks)) == 1

    # The other side learns nothing: no hit, 404 everywhere, no event, no delivery.
    assert await _hits(client, de) == []
    for method, path in (
        ("GET", f"/api/v1/hits/{hit_id}"),
        ("POST", f"/api/v1/hits/{hit_id}/confirm"),
        ("POST", f"/api/v1/hits/{hit_id}/dismiss"),
        ("POST", f"/api/v1/hits/{hit_id}/disclose"),
    ):
        answer = await client.request(method, path, headers=de.headers)
        assert answer.status_code == 404, (method, path)
    assert await _told(db, de.agency.id) == []
    assert await _hit_deliveries(db, de_hooks) == []
    console = await client.get("/api/v1/hits?status=new", headers=de.headers)
    assert console.json()["items"] == []

    # Only the owner's focal point or admin may disclose; a reader may not.
    refused = await client.post(
        f"/api/v1/hits/{hit_id}/disclose", headers=world["KE_reader"].headers
    )
    assert refused.status_code == 403
    assert await _hits(client, de) == []

    disclosed = await client.post(f"/api/v1/hits/{hit_id}/disclose", headers=ke.headers)
    assert disclosed.status_code == 200, disclosed.text
    assert disclosed.json()["blind_to_other"] is False
    # Germany now learns who holds the record, never the record, and no tier signal.
    de_view = await _hits(client, de)
    assert [h["id"] for h in de_view] == [hit_id]
    assert de_view[0]["tier"] == "candidate"
    assert de_view[0]["other"]["alert_id"] is None
    assert de_view[0]["other"]["agency_id"] == str(ke.agency.id)
    assert de_view[0]["other"]["agency_country"] == "KE"
    one = await client.get(f"/api/v1/hits/{hit_id}", headers=de.headers)
    assert one.status_code == 200
    assert secret["id"] not in one.text and "SECRET-M" not in one.text
    assert await _told(db, de.agency.id) == [{"hit_id": hit_id, "tier": "candidate"}]
    assert len(await _hit_deliveries(db, de_hooks)) == 1
    # Disclosing again changes nothing and tells nobody twice; it was audited once.
    again = await client.post(f"/api/v1/hits/{hit_id}/disclose", headers=ke.headers)
    assert again.status_code == 200
    assert len(await _told(db, de.agency.id)) == 1
    async with db.session() as session:
        records = (
            await session.exec(select(AuditRecord).where(AuditRecord.action == "hit.disclose"))
        ).all()
    assert len(records) == 1 and str(records[0].object_id) == hit_id
    # Germany may now act on its side.
    confirmed = await client.post(f"/api/v1/hits/{hit_id}/confirm", headers=de.headers)
    assert confirmed.status_code == 200


async def test_a_recipient_of_the_blind_record_sees_the_hit_as_usual(client, world):
    jo, ke = world["JO"], world["KE"]
    await post_alert(client, ke, _alert("BL-5050", _blind_handlings(world)["red"]))
    await post_alert(client, jo, _alert("BL-5050"))
    jo_view = await _hits(client, jo)
    assert [h["tier"] for h in jo_view] == ["strong"]
    assert jo_view[0]["other"]["alert_id"] is not None
    assert (await _hits(client, ke))[0]["blind_to_other"] is False


async def test_nothing_to_disclose_when_the_other_side_already_knows(client, world):
    await post_alert(client, world["KE"], _alert("ND-6060"))
    await post_alert(client, world["DE"], _alert("ND-6060"))
    hit_id = (await _hits(client, world["KE"]))[0]["id"]
    answer = await client.post(f"/api/v1/hits/{hit_id}/disclose", headers=world["KE"].headers)
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"


async def test_two_blind_records_tell_neither_side(client, db, world):
    handling = _blind_handlings(world)["red"]
    await post_alert(client, world["KE"], _alert("BB-7070", handling))
    await post_alert(client, world["DE"], _alert("BB-7070", handling))
    assert await _hits(client, world["KE"]) == [] == await _hits(client, world["DE"])
    assert await _hit_events(db) == []


# --- no make or calibre signal ----------------------------------------------------------


async def test_probing_with_chosen_makes_gets_one_tier_word(client, db, world):
    ke, de = world["KE"], world["DE"]
    # Amber to Jordan only: Germany may not see it; not blind, so Germany is told of it.
    handling = {
        "tlp": "amber",
        "audience": "recipients",
        "recipient_agencies": [str(world["JO"].agency.id)],
    }
    await post_alert(client, ke, _alert("PR-8080", handling))
    probes = [
        {},  # the same make and calibre: strong
        {"calibre": "5.45x39mm"},  # the same make only: probable
        {"make": "Norinco"},  # neither: candidate
    ]
    for probe in probes:
        await post_alert(client, de, _alert("PR-8080", **probe))
    de_view = await _hits(client, de)
    assert len(de_view) == 3
    assert {h["tier"] for h in de_view} == {"candidate"}
    assert all(h["other"]["alert_id"] is None for h in de_view)
    for hit in de_view:
        one = await client.get(f"/api/v1/hits/{hit['id']}", headers=de.headers)
        assert one.json()["tier"] == "candidate"
    assert {d["tier"] for d in await _told(db, de.agency.id)} == {"candidate"}
    # Kenya may see the German probes: it gets the real tiers.
    assert sorted(h["tier"] for h in await _hits(client, ke)) == [
        "candidate",
        "probable",
        "strong",
    ]
    assert sorted(d["tier"] for d in await _told(db, ke.agency.id)) == [
        "candidate",
        "probable",
        "strong",
    ]


async def test_hits_stay_in_step_with_the_sql_rule(client, db, world):
    """The list (SQL filter) and the read model (predicate) agree on every hit."""
    handlings = _blind_handlings(world)
    for index, name in enumerate(["red", "amber+strict", "originator-only"]):
        await post_alert(client, world["KE"], _alert(f"ST-{index}", handlings[name]))
        await post_alert(client, world["DE"], _alert(f"ST-{index}", handlings[name]))
        await post_alert(client, world["JO"], _alert(f"ST-{index}"))
    async with db.session() as session:
        every = (await session.exec(select(Hit).order_by(col(Hit.created_at)))).all()
        total = (await session.exec(sa.select(sa.func.count()).select_from(Hit))).one()
    assert total[0] == len(every) == 9
    for code in ("KE", "DE", "JO"):
        listed = {h["id"] for h in await _hits(client, world[code])}
        for hit in every:
            answer = await client.get(f"/api/v1/hits/{hit.id}", headers=world[code].headers)
            assert (answer.status_code == 200) == (str(hit.id) in listed), (code, hit.id)


async def test_parallel_disclosures_tell_the_other_side_once(client, db, world):
    """Four disclosures at once (PostgreSQL: four transactions on the hit's row lock):
    each answers 200, the other side is told once, the trail has one record, the
    discloser's version of the hit moved once."""
    ke, de = world["KE"], world["DE"]
    await post_alert(client, ke, _alert("PD-8080", _blind_handlings(world)["red"]))
    await post_alert(client, de, _alert("PD-8080"))
    hit = (await _hits(client, ke))[0]
    answers = await asyncio.gather(
        *(client.post(f"/api/v1/hits/{hit['id']}/disclose", headers=ke.headers) for _ in range(4))
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len(await _told(db, de.agency.id)) == 1
    async with db.session() as session:
        records = (
            await session.exec(select(AuditRecord).where(AuditRecord.action == "hit.disclose"))
        ).all()
    assert len(records) == 1
    after = await client.get(f"/api/v1/hits/{hit['id']}", headers=ke.headers)
    assert after.json()["version"] == hit["version"] + 1


async def test_a_side_shown_candidate_learns_nothing_from_the_hits_version(client, world):
    """Probing with chosen makes and calibres moves the real tier; the side that is not
    shown it must not see its version move either, nor when the other side decides."""
    ke, de, jo = world["KE"], world["DE"], world["JO"]
    to_jo = {"tlp": "amber", "audience": "recipients", "recipient_agencies": [str(jo.agency.id)]}
    await post_alert(
        client, de, _alert("VP-9090", to_jo, make="Heckler & Koch", calibre="5.56x45mm")
    )
    mine = await post_alert(client, ke, _alert("VP-9090", make="Glock", calibre="9x19mm"))
    first = (await _hits(client, ke))[0]
    assert first["tier"] == "candidate" and first["other"]["alert_id"] is None
    guesses = ({"make": "Beretta"}, {"make": "Heckler & Koch"}, {"calibre": "5.56x45mm"})
    item = {**AKM, "serial_raw": "VP-9090", "make": "Glock", "calibre": "9x19mm"}
    for guess in guesses:
        item = {**item, **guess}
        current = await client.get(f"/api/v1/alerts/{mine['id']}", headers=ke.headers)
        patched = await client.patch(
            f"/api/v1/alerts/{mine['id']}",
            json={"items": [item]},
            headers={**ke.headers, "If-Match": current.headers["ETag"]},
        )
        assert patched.status_code == 200, patched.text
        seen = await client.get(f"/api/v1/hits/{first['id']}", headers=ke.headers)
        assert seen.json()["tier"] == "candidate"
        assert seen.json()["version"] == first["version"], guess
        assert seen.headers["ETag"] == f'"{first["version"]}"'
    # Germany may see the Kenyan record: it is shown the real tier, which did move.
    theirs = (await _hits(client, de))[0]
    assert theirs["tier"] == "strong" and theirs["version"] > first["version"]
    decided = await client.post(
        f"/api/v1/hits/{first['id']}/confirm",
        headers={**de.headers, "If-Match": f'"{theirs["version"]}"'},
    )
    assert decided.status_code == 200 and decided.json()["version"] == theirs["version"] + 1
    after = (await _hits(client, ke))[0]
    assert after["version"] == first["version"] and after["status"] == "new"
    mine_decided = await client.post(f"/api/v1/hits/{first['id']}/confirm", headers=ke.headers)
    assert mine_decided.json()["version"] == first["version"] + 1
