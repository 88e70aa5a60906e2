"""Schemathesis over the whole OpenAPI document (DESIGN §10, §11).

Every operation of `openapi/openapi.json` (kept equal to the app's by tests/test_openapi.py)
is fuzzed in-process, authenticated as a `focal_point` and as an `agency_admin`: two runs,
each on SQLite and on PostgreSQL. A case fails on a 5xx, an undocumented status code, an
undocumented content type, or a body that does not match the documented schema.

Reproducible: the seed is fixed (`SEED`) and Hypothesis' example database is off. Per
operation Schemathesis sends its deterministic coverage cases (valid boundary values and
property combinations of every parameter and body) plus up to `MAX_EXAMPLES` fuzzed ones,
valid and invalid. With SEED 2370 and schemathesis 4.32.5 a run sends 2,355 cases over the
59 operations (the same for both roles): 9,420 for the file. Rerun with
TRACEWIRE_SCHEMATHESIS_STATS=<file> to count them again.

Each operation is a pytest item with a fresh database. The records its path names (an
alert, a sharing group, a subscription, a hit, a delivery, ...) are seeded on its first
case, and most generated ids are swapped for seeded ones, so both the found and the
not-found paths run.

Requests go through `httpx.ASGITransport` on the `app` fixture's own event loop: no
network, and the connection pool never crosses loops. (Schemathesis' ASGI transport would
run the app on a background-thread loop and start its lifespan there, which on SQLite
also starts the in-process workers. And its `schemathesis.pytest.from_fixture` loader,
which would share one world per run, breaks on pytest 9.2: it writes `Node._nodeid`.)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from app.agencies.models import Agency
from app.authz.principal import Role
from app.core.db import Database
from app.core.security import PasswordHashing
from tests.factories import (
    Actor,
    make_actor,
    make_agency,
    make_client,
    make_user,
    password_login,
    post_alert,
    seizure_body,
    trace_body,
)
from tests.secrets_seen import remember

SEED = 2370  # UNSCR 2370 (2017)
MAX_EXAMPLES = 15  # generated (fuzzing) cases per operation, on top of the coverage cases
BASE_URL = "http://testserver"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# The `requests.Request` arguments `Case.as_transport_kwargs` can produce.
REQUEST_ARGS = ("method", "url", "headers", "params", "cookies", "data", "json", "files", "auth")

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        # No example database: a run never replays cases an earlier run found.
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {
            "coverage": {
                # Not sent, to keep the file near 3 minutes a backend: the coverage phase's
                # invalid values (~2,900 cases a run, 2,000 of them one wrong type after
                # another, every one a 422 from request validation) and methods the document
                # does not define (~290 cases, 405s that none of the four checks judges).
                # Invalid input still runs, from the fuzzing phase (random bytes, wrong
                # types, out-of-range values): that is what found the undocumented 400s.
                "generation": {"mode": "positive"},
                "unexpected-methods": [],
            }
        },
    }
)
# Well-formed RFC 3339 date-times at the edges: the first ones overflow once converted to
# UTC (they once gave 500s), the others are the last instants UTC holds, a leap second and
# more fractional digits than a datetime keeps. Half of every date-time drawn is one of
# these, the other half any instant with any whole-minute offset.
EDGE_DATE_TIMES = (
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-00:01",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "2026-11-30T12:00:00.123456789123Z",
)
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
schemathesis.openapi.format(
    "date-time",
    st.sampled_from(EDGE_DATE_TIMES) | st.datetimes(timezones=OFFSETS).map(datetime.isoformat),
)
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)


@dataclass
class Run:
    """One operation's world: the actor, and records seeded on demand."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    db: Database
    hashing: PasswordHashing
    role: Role
    home: Agency
    other: Agency
    actor: Actor
    ids: dict[str, list[str]] = field(default_factory=dict)
    throwaway_token: str = ""
    cases: Counter[str] = field(default_factory=Counter)
    _admin: Actor | None = None
    _partner: Actor | None = None

    def wait(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run `coro` on the app's event loop (idle between cases: the test is sync)."""
        return self.loop.run_until_complete(coro)

    async def admin(self) -> Actor:
        if self._admin is None:
            self._admin = (
                self.actor
                if self.role is Role.agency_admin
                else await make_actor(
                    self.client, self.db, self.hashing, self.home, Role.agency_admin
                )
            )
        return self._admin

    async def partner(self) -> Actor:
        if self._partner is None:
            self._partner = await make_actor(
                self.client, self.db, self.hashing, self.other, Role.focal_point
            )
        return self._partner

    async def seed(self, name: str) -> None:
        """Make the records a path parameter called `name` can point at (once)."""
        if name in self.ids:
            return
        if name == "user_id":
            # Never the actor: the run must not be able to lock itself out.
            bystander = await make_user(self.db, self.hashing, self.home, Role.reader)
            self.ids[name] = [str(bystander.id)]
        elif name == "client_id":
            api_client, _ = await make_client(self.db, self.home, "alerts:read alerts:write")
            self.ids[name] = [str(api_client.id)]
        elif name == "group_id":
            answer = await self.client.post(
                "/api/v1/sharing-groups",
                json={"name": "Schemathesis group", "members": [str(self.other.id)]},
                headers=(await self.admin()).headers,
            )
            assert answer.status_code == 201, answer.text
            self.ids[name] = [answer.json()["id"]]
        elif name == "sub_id":
            answer = await self.client.post(
                "/api/v1/subscriptions",
                json={"url": "https://hooks.example.org/tracewire"},
                headers=(await self.admin()).headers,
            )
            assert answer.status_code == 201, answer.text
            self.ids[name] = [answer.json()["id"]]
        elif name == "token_id":
            answer = await self.client.post(
                "/api/v1/me/tokens",
                json={
                    "name": "Schemathesis token",
                    "scopes": ["alerts:read"],
                    "expires_in_days": 1,
                },
                headers=self.actor.headers,
            )
            assert answer.status_code == 201, answer.text
            remember(answer.json()["token"])
            self.ids[name] = [answer.json()["id"]]
        elif name in ("alert_id", "hit_id", "delivery_id"):
            await self._seed_alerts()
        else:
            raise AssertionError(f"no seed for path parameter {name!r}")

    async def _seed_alerts(self) -> None:
        await self.seed("sub_id")  # first, so that publishing queues deliveries
        partner, admin = await self.partner(), await self.admin()
        alerts = [
            await post_alert(self.client, self.actor, seizure_body()),
            await post_alert(self.client, self.actor, seizure_body(title="Draft"), publish=False),
            await post_alert(self.client, partner, trace_body(self.home, country="UG")),
            await post_alert(self.client, self.actor, trace_body(self.other)),
        ]
        await post_alert(self.client, partner, seizure_body(country="UG"))  # same serials: hits
        hits = await self.client.get("/api/v1/hits", headers=admin.headers)
        sub_id = self.ids["sub_id"][0]
        deliveries = await self.client.get(
            f"/api/v1/subscriptions/{sub_id}/deliveries", headers=admin.headers
        )
        assert hits.json()["items"] and deliveries.json()["items"], (hits.text, deliveries.text)
        self.ids["alert_id"] = [a["id"] for a in alerts]
        self.ids["hit_id"] = [hits.json()["items"][0]["id"]]
        self.ids["delivery_id"] = [deliveries.json()["items"][0]["id"]]

    async def etag(self, alert_id: str) -> str | None:
        answer = await self.client.get(f"/api/v1/alerts/{alert_id}", headers=self.actor.headers)
        return answer.headers.get("etag")


@pytest.fixture(params=[Role.focal_point, Role.agency_admin], ids=lambda r: r.value)
def role(request: pytest.FixtureRequest) -> Role:
    """Who the run is authenticated as."""
    return request.param


@pytest.fixture
async def run(app: Any, client: httpx.AsyncClient, db: Database, role: Role) -> Run:
    """Two agencies and the logged-in actor; everything else is seeded on demand."""
    hashing = app.state.auth.hashing
    home = await make_agency(db, name="Schemathesis home", country="KE")
    result = Run(
        loop=asyncio.get_running_loop(),
        client=client,
        db=db,
        hashing=hashing,
        role=role,
        home=home,
        other=await make_agency(db, name="Schemathesis other", country="UG"),
        actor=await make_actor(client, db, hashing, home, role),
    )
    result.ids["agency_id"] = [str(result.home.id), str(result.other.id)]
    return result


@pytest.fixture(autouse=True)
def _count_cases(run: Run) -> Iterator[None]:
    """With TRACEWIRE_SCHEMATHESIS_STATS=file, append each operation's case count to it."""
    yield
    if path := os.environ.get("TRACEWIRE_SCHEMATHESIS_STATS"):
        with open(path, "a") as out:
            out.write(json.dumps({"role": run.role.value, "cases": run.cases}) + "\n")


def _draw(case: schemathesis.Case, salt: str) -> int:
    """A number fixed by the case's content (not by the process: no `hash()`)."""
    content = json.dumps(
        [salt, case.path_parameters, case.query, case.headers, case.body],
        sort_keys=True,
        default=lambda value: type(value).__name__,
    )
    return int.from_bytes(hashlib.sha256(content.encode()).digest()[:8], "big")


async def _prepare(run: Run, case: schemathesis.Case) -> None:
    """Point most generated ids at seeded records, deterministically per case.

    The choice hangs on the whole case, not on the generated id alone: the coverage
    phase keeps one id while it varies the body, and those bodies must reach real records.
    """
    for name, value in list((case.path_parameters or {}).items()):
        try:
            uuid.UUID(str(value))
        except ValueError:
            continue  # a deliberately malformed id: keep it
        await run.seed(name)
        pool = run.ids[name]
        pick = _draw(case, name) % (len(pool) + 1)
        if pick == len(pool):
            continue  # the last slot keeps the random id (the 404 path)
        case.path_parameters[name] = pool[pick]
        if name == "alert_id" and case.headers and "if-match" in case.headers:
            if _draw(case, "if-match") % 2:
                # The current ETag, so that changes get past the 412 and are applied.
                etag = await run.etag(pool[pick])
                if etag:
                    case.headers["if-match"] = etag
    if case.path == "/api/v1/auth/revoke" and isinstance(case.body, dict):
        # The body names the token to revoke. It could only be the run's own by accident
        # (Schemathesis never sees it), which would log the run out: for such a case,
        # and for half the others, revoke a throwaway session's token (the success path).
        token = case.body.get("token")
        own = run.actor.headers["Authorization"].removeprefix("Bearer ")
        if token == own or (isinstance(token, str) and _draw(case, "revoke") % 2):
            if not run.throwaway_token:
                bystander = await make_user(run.db, run.hashing, run.home, Role.reader)
                login = await password_login(run.client, bystander.email)
                run.throwaway_token = login["refresh_token"]
            case.body["token"] = run.throwaway_token


async def _send(run: Run, case: schemathesis.Case) -> httpx.Response:
    await _prepare(run, case)
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=run.actor.headers)
    unexpected = set(kwargs) - set(REQUEST_ARGS)
    assert not unexpected, f"unhandled transport arguments {unexpected}"
    # `requests` serialises the case exactly as Schemathesis' own transport; httpx delivers.
    prepared = requests.Request(**kwargs).prepare()
    request = run.client.build_request(
        prepared.method or "GET",
        prepared.url or "",
        headers=dict(prepared.headers),
        content=prepared.body,
    )
    return await run.client.send(request)


@schema.parametrize()
# `run` is function-scoped on purpose: one world per operation, shared by its cases.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_conforms_to_the_openapi_document(
    case: schemathesis.Case, run: Run
) -> None:
    response = run.wait(_send(run, case))
    run.cases[case.operation.label] += 1
    case.validate_response(response, checks=CHECKS)
