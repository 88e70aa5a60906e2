"""Parallel writers over HTTP against a real `tracewire serve`: exactly one wins.

Each test starts the service on the test's database (PostgreSQL and SQLite) and sends
N requests at once that all start from the same version or the same workflow state.
Exactly one may succeed; the others get 412 (stale `If-Match`) or 409 (the state moved
on), and what is stored is the winner's change. On SQLite one transaction writes at a
time, so there these tests check the same rule on a database that serialises anyway.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlmodel import col, select

from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.events.models import Event
from app.traces.models import TraceRequest
from tests import live
from tests.factories import PASSWORD, make_agency, make_user, seizure_body, trace_body

N = 8  # parallel writers per race: enough to overlap on two cores, bounded
RESPONSE = {"outcome": "traced", "findings": {"manufacturer": "Zastava Arms"}}


@dataclass
class Live:
    """The running service, a client for it and each party's headers."""

    http: httpx.AsyncClient
    agencies: dict[str, uuid.UUID]
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def post(self, who: str, path: str, body: object = None, **headers: str):
        return await self.http.post(path, json=body, headers={**self.headers[who], **headers})

    async def get(self, who: str, path: str) -> dict:
        answer = await self.http.get(path, headers=self.headers[who])
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
async def world(request, db, app, db_url, backend, tmp_path) -> AsyncIterator[Live]:
    """KE asks DE; DE2 is another German agency; a `tracewire serve` on this database.

    Parametrised with a number of API processes (`TWO_PROCESSES`), the service on
    PostgreSQL runs that many, so writers race across processes as well as between the
    awaits of one event loop (they start three times slower on this machine: only the
    main races use them).
    """
    processes = getattr(request, "param", 1) if backend == "postgres" else 1
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    de = await make_agency(db, country="DE")
    de2 = await make_agency(db, country="DE")
    users = {
        "ke": await make_user(db, hashing, ke, Role.focal_point),
        "ke_admin": await make_user(db, hashing, ke, Role.agency_admin),
        "de": await make_user(db, hashing, de, Role.focal_point),
        "de2": await make_user(db, hashing, de2, Role.focal_point),
    }
    async with (
        live.serve(
            db_url,
            tmp_path,
            args=("--workers", str(processes)),
            RATE_LIMIT_PER_MINUTE="0",
            TOKEN_RATE_LIMIT_PER_MINUTE="0",
        ) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        world = Live(http, {"ke": ke.id, "de": de.id, "de2": de2.id})
        for name, user in users.items():
            token = await http.post(
                "/api/v1/auth/token",
                data={"grant_type": "password", "username": user.email, "password": PASSWORD},
            )
            assert token.status_code == 200, token.text
            world.headers[name] = {"Authorization": f"Bearer {token.json()['access_token']}"}
        yield world


TWO_PROCESSES = pytest.mark.parametrize("world", [2], indirect=True, ids=["2-processes"])


def _statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(a.status_code for a in answers)


def _one_winner(answers: list[httpx.Response], losers: set[int]) -> httpx.Response:
    """The single 2xx answer; every other answer one of `losers`."""
    won = [a for a in answers if a.status_code < 300]
    assert len(won) == 1, _statuses(answers)
    assert all(a.status_code in losers for a in answers if a is not won[0]), [
        (a.status_code, a.text[:200]) for a in answers if a is not won[0]
    ]
    return won[0]


async def _new_trace(w: Live, *, publish: bool = True) -> str:
    body = trace_body(_Agency(w.agencies["de"]))
    answer = await w.post("ke", "/api/v1/alerts", {**body, "publish": publish})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


@dataclass
class _Agency:
    id: uuid.UUID


@TWO_PROCESSES
async def test_parallel_patches_with_one_version_have_one_winner(world, db):
    alert = await world.post("ke", "/api/v1/alerts", {**seizure_body(), "publish": True})
    url = f"/api/v1/alerts/{alert.json()['id']}"
    for version in (1, 2):
        answers = await asyncio.gather(
            *[
                world.http.patch(
                    url,
                    json={"title": f"Writer {k} at v{version}", "tags": [f"w{k}"]},
                    headers={**world.headers["ke"], "If-Match": f'"{version}"'},
                )
                for k in range(N)
            ]
        )
        won = _one_winner(answers, {412})
        assert won.headers["etag"] == f'"{version + 1}"'
        stored = await world.get("ke", url)
        assert stored["version"] == version + 1
        assert (stored["title"], stored["tags"]) == (won.json()["title"], won.json()["tags"])
    async with db.session() as session:
        updates = (
            await session.exec(
                select(AuditRecord).where(
                    AuditRecord.action == "alert.update",
                    AuditRecord.object_id == str(alert.json()["id"]),
                )
            )
        ).all()
    assert len(updates) == 2  # one per round: the losers changed nothing


async def test_parallel_publishes_publish_once(world, db):
    drafts = [
        (await world.post("ke", "/api/v1/alerts", {**seizure_body(), "publish": False})).json()[
            "id"
        ]
        for _ in range(3)
    ]
    drafts.append(await _new_trace(world, publish=False))
    for alert_id in drafts:
        answers = await asyncio.gather(
            *[world.post("ke", f"/api/v1/alerts/{alert_id}/publish") for _ in range(N)]
        )
        _one_winner(answers, {409})
        async with db.session() as session:
            published = (
                await session.exec(
                    select(Event).where(
                        Event.alert_id == uuid.UUID(alert_id), Event.type == "alert.published"
                    )
                )
            ).all()
        assert len(published) == 1
        assert (await world.get("ke", f"/api/v1/alerts/{alert_id}"))["version"] == 2


@TWO_PROCESSES
async def test_withdraw_and_respond_from_one_state_have_one_winner(world, db):
    """Requester withdraws (both routes) while the addressee responds, from `acknowledged`."""
    outcomes = Counter()
    for _round in range(4):
        trace_id = await _new_trace(world)
        base = f"/api/v1/trace-requests/{trace_id}"
        assert (await world.post("de", f"{base}/acknowledge")).status_code == 200
        calls = [
            world.post("de", f"{base}/respond", RESPONSE),
            world.post("ke", f"{base}/withdraw", {"reason": "Found by other means."}),
            world.post("ke", f"/api/v1/alerts/{trace_id}/withdraw", {"reason": "Sent twice."}),
        ]
        answers = await asyncio.gather(*calls)
        won = _one_winner(answers, {409})
        winner = ("respond", "trace-withdraw", "alert-withdraw")[answers.index(won)]
        outcomes[winner] += 1
        trace = await world.get("ke", base)
        alert = await world.get("ke", f"/api/v1/alerts/{trace_id}")
        if winner == "respond":
            assert (trace["state"], alert["status"]) == ("responded", "published")
            assert trace["response"]["outcome"] == "traced"
        else:
            assert (trace["state"], alert["status"]) == ("withdrawn", "withdrawn")
            assert trace["response"] is None
        assert [t["to_state"] for t in trace["transitions"]][1:] == [
            "acknowledged",
            trace["state"],
        ]
        async with db.session() as session:
            events = Counter(
                e.type
                for e in (
                    await session.exec(select(Event).where(Event.alert_id == uuid.UUID(trace_id)))
                ).all()
            )
        assert events["trace.responded"] + events["trace.withdrawn"] == 1
        assert events["alert.withdrawn"] == (0 if winner == "respond" else 1)
    assert sum(outcomes.values()) == 4


@TWO_PROCESSES
async def test_every_step_from_one_state_has_one_winner(world, db):
    """From `acknowledged`: respond, request info, forward and withdraw all at once."""
    trace_id = await _new_trace(world)
    base = f"/api/v1/trace-requests/{trace_id}"
    assert (await world.post("de", f"{base}/acknowledge")).status_code == 200
    steps = [
        ("respond", "de", f"{base}/respond", RESPONSE),
        ("request_info", "de", f"{base}/request-info", {"question": "Which proof marks?"}),
        (
            "forward",
            "de",
            f"{base}/forward",
            {"agency_id": str(world.agencies["de2"]), "note": "Our customs hold the records."},
        ),
        ("withdraw", "ke", f"{base}/withdraw", {"reason": "No longer needed."}),
    ]
    calls = [(name, world.post(who, path, body)) for name, who, path, body in steps * 2]
    answers = await asyncio.gather(*[c for _, c in calls])
    won = _one_winner(answers, {409})
    winner = calls[answers.index(won)][0]
    target = {
        "respond": "responded",
        "request_info": "info_requested",
        "forward": "forwarded",
        "withdraw": "withdrawn",
    }[winner]
    trace = await world.get("ke", base)
    assert trace["state"] == target
    assert [t["to_state"] for t in trace["transitions"]] == ["submitted", "acknowledged", target]
    async with db.session() as session:
        spawned = (
            await session.exec(
                select(TraceRequest).where(
                    col(TraceRequest.forwarded_from_alert_id) == uuid.UUID(trace_id)
                )
            )
        ).all()
    assert len(spawned) == (1 if winner == "forward" else 0)


async def test_parallel_hit_decisions_have_one_winner(world):
    item = {"category": "small_arm", "make": "Zastava", "calibre": "7.62x39mm"}
    item["serial_raw"] = "Z-77"
    ke = await world.post("ke", "/api/v1/alerts", {**seizure_body(items=[item]), "publish": True})
    de_body = {**seizure_body(items=[item]), "publish": True, "country": "DE"}
    assert (await world.post("de", "/api/v1/alerts", de_body)).status_code == 201
    hits = await world.get("de", "/api/v1/hits")
    assert [h["other"]["agency_id"] for h in hits["items"]] == [str(world.agencies["ke"])]
    hit = hits["items"][0]
    url = f"/api/v1/hits/{hit['id']}"
    assert ke.status_code == 201
    # With the version it was shown: one confirmation wins, the rest are stale.
    stale_or_not = {"If-Match": f'"{hit["version"]}"'}
    answers = await asyncio.gather(
        *[world.post("de", f"{url}/confirm", **stale_or_not) for _ in range(N)]
    )
    won = _one_winner(answers, {412})
    assert won.json()["status"] == "confirmed"
    # Without a version: the decision is taken once, repeats find it taken.
    answers = await asyncio.gather(*[world.post("de", f"{url}/dismiss") for _ in range(N)])
    won = _one_winner(answers, {409})
    stored = await world.get("de", url)
    assert (stored["status"], stored["version"]) == ("dismissed", won.json()["version"])


async def test_parallel_subscription_changes_have_one_winner(world):
    created = await world.post(
        "ke_admin", "/api/v1/subscriptions", {"url": "https://hooks.example.org/tracewire"}
    )
    assert created.status_code == 201, created.text
    url = f"/api/v1/subscriptions/{created.json()['id']}"
    answers = await asyncio.gather(
        *[
            world.http.patch(
                url,
                json={"description": f"writer {k}", "countries": [("DE", "KE", "CO", "JO")[k % 4]]},
                headers={**world.headers["ke_admin"], "If-Match": f'"{created.json()["version"]}"'},
            )
            for k in range(N)
        ]
    )
    won = _one_winner(answers, {412})
    stored = await world.get("ke_admin", url)
    assert (stored["description"], stored["countries"]) == (
        won.json()["description"],
        won.json()["countries"],
    )
    assert stored["version"] == created.json()["version"] + 1


async def test_parallel_policy_replacements_have_one_winner(world):
    url = f"/api/v1/agencies/{world.agencies['ke']}/sharing-policy"

    def policy(k: int) -> dict:
        return {
            "kinds": {
                "seized_weapon": {
                    "default": {
                        "tlp": "amber",
                        "audience": "originator",
                        "handling_codes": [f"writer-{k}"],
                    }
                }
            }
        }

    first = await world.http.put(url, json=policy(99), headers=world.headers["ke_admin"])
    assert first.status_code == 200, first.text
    answers = await asyncio.gather(
        *[
            world.http.put(
                url,
                json=policy(k),
                headers={**world.headers["ke_admin"], "If-Match": f'"{first.json()["version"]}"'},
            )
            for k in range(N)
        ]
    )
    won = _one_winner(answers, {412})
    stored = await world.get("ke_admin", url)
    assert stored["kinds"] == won.json()["kinds"]
    assert stored["version"] == first.json()["version"] + 1
