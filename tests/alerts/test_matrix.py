"""Every alert endpoint x principal x relationship x handling: the right status, every time.

The expected answer of each case comes from the small oracle below, written from
DESIGN §2, §4 and §8 and deliberately NOT from app/sharing:

- an agency sees its own alerts (drafts included); others see a published (or
  withdrawn) alert once its embargo has passed, when it is a trace request
  addressed to them, when they are named, when they are a *current* member of a
  named group (red: named agencies only), or when it goes to the community;
- a withdrawn alert is a tombstone for everybody but its originator;
- a `red` alert is only a reference (id, kind, tlp, status, version, url) for an API
  client without the explicit `alerts:read:red` scope, its own agency's client included
  (users: their role decides, and every role reads what its agency sees);
- not visible: 404 on every path, never 403, and absent from every list;
- every alert endpoint needs `alerts:read` (403 without it), a change needs
  `alerts:write` and the originating agency (403 on a visible alert otherwise);
- publish needs a draft, withdraw a published alert, a change anything but a
  withdrawn alert (409 otherwise);
- a suspended agency's principals are refused (401) everywhere;
- platform_admin is treated like any principal of its own agency (no extra sight).

The world (agencies, a group, principals, alerts) is built once per test and each
test loops over all its cases, collecting every mismatch before asserting, so a
failure lists them all as "endpoint/principal/relationship/handling: expected X got Y".
Reads and lists cover every handling case; writes cover one alert per distinct pattern
of the oracle's answers (WRITE_CASES) to keep the run short.

A tombstone is found by its identity only: content filters such as `?serial=` never
match a withdrawn alert's items for anyone but its originator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.authz.principal import Role
from tests.factories import (
    bearer,
    client_login,
    make_agency,
    make_client,
    make_user,
    password_login,
    seizure_body,
)

# --- principals and what the oracle lets them do (DESIGN §2) ----------------------------

USER_ROLES = {
    "reader": Role.reader,
    "focal_point": Role.focal_point,
    "agency_admin": Role.agency_admin,
    "platform_admin": Role.platform_admin,
}
CLIENT_SCOPES = {
    "client_all": "alerts:read alerts:write traces:write webhooks:manage",
    "client_none": "webhooks:manage",
    "client_red": "alerts:read alerts:read:red",
}
CAN_READ = {
    "reader": True,
    "focal_point": True,
    "agency_admin": True,
    "platform_admin": True,
    "client_all": True,
    "client_none": False,
    "client_red": True,
}
CAN_WRITE = {
    "reader": False,
    "focal_point": True,
    "agency_admin": True,
    "platform_admin": True,
    "client_all": True,
    "client_none": False,
    "client_red": False,
}
READS_RED = {"reader", "focal_point", "agency_admin", "platform_admin", "client_red"}

# --- relationships of the principal's agency to the alerts ------------------------------

RELATIONSHIPS = {
    "own": "KE",  # the originator
    "named": "CO",  # in recipient_agencies
    "member": "DE",  # member of the group named in recipient_groups
    "former": "FR",  # member when the alerts were posted, removed afterwards
    "outsider": "XX",  # nothing to do with the alerts
    "suspended": "UG",  # named and a group member, then suspended after login
    "addressee": "BR",  # addressee of the trace requests
}
NAMED = {"named", "suspended"}
CURRENT_MEMBERS = {"member", "suspended"}
INACTIVE = {"suspended"}

# --- handling cases ---------------------------------------------------------------------

SEIZURE, TRACE = "seized_weapon", "trace_request"
SERIAL = "TW-MATRIX-7731"  # on every matrix alert (and not on the decoy)


@dataclass(frozen=True)
class Handling:
    name: str
    tlp: str
    audience: str
    named: bool = False  # NAMED and SUSPENDED in recipient_agencies
    group: bool = False  # the group in recipient_groups
    embargoed: bool = False  # embargo_until in the future
    status: str = "published"  # draft | published | withdrawn
    # Seizures throughout; trace requests (for the addressee) where the answer differs.
    kinds: tuple[str, ...] = (SEIZURE,)


BOTH, TRACE_ONLY = (SEIZURE, TRACE), (TRACE,)
NAMED_AND_GROUP = {"named": True, "group": True}
HANDLINGS = (
    Handling("clear/community", "clear", "community"),
    Handling("green/community", "green", "community"),
    Handling("amber/recipients", "amber", "recipients", **NAMED_AND_GROUP),
    Handling("amber+strict/recipients", "amber+strict", "recipients", **NAMED_AND_GROUP),
    Handling("amber/group-only", "amber", "recipients", group=True),
    Handling("red/recipients", "red", "recipients", named=True, kinds=BOTH),
    Handling("amber/addressee-only", "amber", "recipients", kinds=TRACE_ONLY),
    Handling("amber/originator", "amber", "originator", kinds=BOTH),
    Handling("green/community+embargo", "green", "community", embargoed=True),
    Handling(
        "amber/recipients+embargo",
        "amber",
        "recipients",
        **NAMED_AND_GROUP,
        embargoed=True,
        kinds=BOTH,
    ),
    Handling("green/community draft", "green", "community", status="draft"),
    Handling(
        "amber/recipients draft",
        "amber",
        "recipients",
        **NAMED_AND_GROUP,
        status="draft",
        kinds=BOTH,
    ),
    Handling("green/community withdrawn", "green", "community", status="withdrawn"),
    Handling(
        "amber/recipients withdrawn",
        "amber",
        "recipients",
        **NAMED_AND_GROUP,
        status="withdrawn",
        kinds=BOTH,
    ),
)
GROUP_ONLY = HANDLINGS[4]


@dataclass(frozen=True)
class Case:
    """One alert of the matrix: a handling case of one kind."""

    handling: Handling
    kind: str

    @property
    def label(self) -> str:
        return f"{self.handling.name}[{self.kind}]"


CASES = tuple(Case(h, k) for h in HANDLINGS for k in h.kinds)
# Writes run on one alert per distinct pattern of the oracle's answers (who sees it, in
# which state); reads and lists run on every case.
WRITE_CASES = tuple(
    c
    for c in CASES
    if c.label
    in {
        "clear/community[seized_weapon]",
        "amber/recipients[seized_weapon]",
        "amber/group-only[seized_weapon]",
        "red/recipients[seized_weapon]",
        "red/recipients[trace_request]",
        "amber/addressee-only[trace_request]",
        "amber/originator[seized_weapon]",
        "amber/originator[trace_request]",
        "amber/recipients+embargo[trace_request]",
        "amber/recipients draft[trace_request]",
        "green/community withdrawn[seized_weapon]",
        "amber/recipients withdrawn[seized_weapon]",
        "amber/recipients withdrawn[trace_request]",
    }
)


# --- the oracle ---------------------------------------------------------------------------


def reasons(rel: str, case: Case) -> set[str]:
    """The DESIGN §4 rules that let agency `rel` see the alert (empty: it may not)."""
    h = case.handling
    if rel == "own":
        return {"originator"}
    if h.status == "draft" or h.embargoed:
        return set()
    found = set()
    if case.kind == TRACE and rel == "addressee":
        found.add("addressee")
    if h.audience == "recipients":
        if h.named and rel in NAMED:
            found.add("recipient_agency")
        if h.group and h.tlp != "red" and rel in CURRENT_MEMBERS:
            found.add("group_member")
    if h.audience == "community" and rel not in INACTIVE:
        found.add("community")
    return found


def tombstone(rel: str, case: Case) -> bool:
    """Recipients of a withdrawn alert see only its tombstone; the originator sees it all."""
    return case.handling.status == "withdrawn" and rel != "own"


def view(principal: str, rel: str, case: Case) -> str:
    """What a visible alert shows: `tombstone`, `reference` (red, no red scope) or `content`."""
    if tombstone(rel, case):
        return "tombstone"
    if case.handling.tlp == "red" and principal not in READS_RED:
        return "reference"
    return "content"


def read_status(principal: str, rel: str, case: Case) -> int:
    if rel in INACTIVE:
        return 401
    if not CAN_READ[principal]:
        return 403
    return 200 if reasons(rel, case) else 404


def list_status(principal: str, rel: str) -> int:
    if rel in INACTIVE:
        return 401
    return 200 if CAN_READ[principal] else 403


WRITE_NEEDS = {"patch": ("draft", "published"), "publish": ("draft",), "withdraw": ("published",)}


def write_status(endpoint: str, principal: str, rel: str, case: Case) -> int:
    first = read_status(principal, rel, case)
    if first != 200:
        return first
    if rel != "own" or not CAN_WRITE[principal]:
        return 403
    return 200 if case.handling.status in WRITE_NEEDS[endpoint] else 409


# --- the world ----------------------------------------------------------------------------


@dataclass
class World:
    agency_ids: dict[str, str]
    headers: dict[tuple[str, str], dict[str, str]]  # (relationship, principal)
    group_id: str
    alerts: dict[Case, dict] = field(default_factory=dict)  # as posted (originator's view)
    decoy_id: str = ""

    @property
    def author(self) -> dict[str, str]:
        return self.headers[("own", "focal_point")]


def _handling_body(w: World, h: Handling) -> dict:
    body: dict = {"tlp": h.tlp, "audience": h.audience}
    if h.named:
        body["recipient_agencies"] = [w.agency_ids["named"], w.agency_ids["suspended"]]
    if h.group:
        body["recipient_groups"] = [w.group_id]
    if h.embargoed:
        body["embargo_until"] = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    return body


async def post_case(client: httpx.AsyncClient, w: World, case: Case, *, items: bool = True) -> dict:
    """Post the alert of `case` as the originator's focal point, in the case's state.

    `items=False` (the writes' fresh alerts) leaves out the item, so that a hundred
    copies of one serial do not set off a hundred rounds of hit matching.
    """
    h = case.handling
    body = seizure_body(
        title=f"Matrix {case.label}",
        handling=_handling_body(w, h),
        items=[{"category": "small_arm", "make": "Zastava", "serial_raw": SERIAL}] if items else [],
        publish=h.status != "draft",
    )
    if case.kind == TRACE:
        body["kind"] = TRACE
        body["details"] = {
            "addressed_to": w.agency_ids["addressee"],
            "circumstances": "Found in an arms cache",
            "illicit_reason": "Not marked on import",
            "intended_use": "Criminal investigation",
        }
    answer = await client.post("/api/v1/alerts", json=body, headers=w.author)
    assert answer.status_code == 201, (case.label, answer.text)
    alert = answer.json()
    if h.status == "withdrawn":
        answer = await client.post(
            f"/api/v1/alerts/{alert['id']}/withdraw", json={"reason": "Matrix"}, headers=w.author
        )
        assert answer.status_code == 200, (case.label, answer.text)
        alert = answer.json()
    assert alert["status"] == h.status
    return alert


@pytest.fixture
async def world(client: httpx.AsyncClient, db, app) -> World:
    hashing = app.state.auth.hashing
    agencies = {rel: await make_agency(db, country=c) for rel, c in RELATIONSHIPS.items()}
    headers: dict[tuple[str, str], dict[str, str]] = {}
    for rel, agency in agencies.items():
        for principal, role in USER_ROLES.items():
            user = await make_user(db, hashing, agency, role)
            headers[(rel, principal)] = bearer(
                (await password_login(client, user.email))["access_token"]
            )
        for principal, scopes in CLIENT_SCOPES.items():
            api_client, secret = await make_client(db, agency, scopes)
            headers[(rel, principal)] = bearer(
                (await client_login(client, api_client.id, secret))["access_token"]
            )
    ids = {rel: str(a.id) for rel, a in agencies.items()}
    own_admin = headers[("own", "agency_admin")]
    group = await client.post(
        "/api/v1/sharing-groups",
        json={
            "name": "Matrix group",
            "members": [ids["member"], ids["former"], ids["suspended"]],
        },
        headers=own_admin,
    )
    assert group.status_code == 201, group.text
    w = World(agency_ids=ids, headers=headers, group_id=group.json()["id"])
    for case in CASES:
        w.alerts[case] = await post_case(client, w, case)
    decoy = await client.post(
        "/api/v1/alerts", json=seizure_body(title="Decoy", publish=True), headers=w.author
    )
    assert decoy.status_code == 201, decoy.text
    w.decoy_id = decoy.json()["id"]

    # Before the changes, the former member and the suspended agency do see group alerts.
    probe = w.alerts[Case(GROUP_ONLY, SEIZURE)]["id"]
    for rel in ("former", "suspended"):
        seen = await client.get(f"/api/v1/alerts/{probe}", headers=headers[(rel, "reader")])
        assert seen.status_code == 200, (rel, seen.text)

    # The former member leaves the group, through the API.
    left = await client.delete(
        f"/api/v1/sharing-groups/{w.group_id}/members/{ids['former']}", headers=own_admin
    )
    assert left.status_code == 200, left.text
    assert ids["former"] not in left.json()["members"]
    # The operator suspends an agency whose principals are already logged in.
    suspended = await client.patch(
        f"/api/v1/agencies/{ids['suspended']}",
        json={"status": "suspended"},
        headers=headers[("outsider", "platform_admin")],
    )
    assert suspended.status_code == 200, suspended.text
    return w


# --- checking -----------------------------------------------------------------------------

# Requests in flight at once: each case is independent of the others (refused writes
# change nothing, and a write meant to succeed has an alert of its own).
CONCURRENCY = 8


@dataclass
class Call:
    """One request of the matrix, what it should answer, and what else to check."""

    where: str  # endpoint/principal/relationship/handling
    method: str
    url: str
    headers: dict[str, str]
    expected: int
    json: dict | None = None
    then: Callable[[Tally, httpx.Response], None] | None = None  # on an expected 200


@dataclass
class Tally:
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)

    def check(self, where: str, expected: object, got: object) -> None:
        self.checked += 1
        if expected != got:
            self.mismatches.append(f"{where}: expected {expected} got {got}")

    async def run(self, client: httpx.AsyncClient, calls: list[Call]) -> None:
        """Send every call (a few at a time), then check every answer."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def send(call: Call) -> httpx.Response:
            async with gate:
                return await client.request(
                    call.method, call.url, headers=call.headers, json=call.json
                )

        answers = await asyncio.gather(*(send(c) for c in calls))
        for call, answer in zip(calls, answers, strict=True):
            self.check(call.where, call.expected, _outcome(answer))
            if call.then is not None and call.expected == answer.status_code == 200:
                call.then(self, answer)

    def assert_clean(self, what: str) -> None:
        print(f"{what}: {self.checked} cases checked, {len(self.mismatches)} mismatches")
        for line in self.mismatches:
            print(line)
        assert not self.mismatches, (
            f"{len(self.mismatches)} of {self.checked} cases wrong:\n" + "\n".join(self.mismatches)
        )


def _outcome(answer: httpx.Response) -> object:
    """The status, flagged when an error is not a problem document."""
    content_type = answer.headers.get("content-type", "")
    if answer.status_code >= 400 and not content_type.startswith("application/problem+json"):
        return f"{answer.status_code} (not problem+json)"
    return answer.status_code


def _seen_as(body: dict) -> str:
    """How much of an alert an answer shows: `content`, `reference`, `tombstone`, or what
    went wrong."""
    if body.get("reference"):
        shown = [k for k in ("title", "summary", "items", "handling", "details") if body.get(k)]
        if shown or body.get("tombstone"):
            return f"leaky reference {shown}"
        fields = (body.get("tlp"), body.get("url"), body.get("version"), body.get("kind"))
        return "reference" if all(fields) else f"incomplete reference {fields}"
    if not body.get("tombstone"):
        return "content" if body.get("title") is not None else "no content, not a tombstone"
    shown = [k for k in ("title", "summary", "items", "handling", "details") if body.get(k)]
    return "tombstone" if not shown else f"leaky tombstone {shown}"


# --- reads ----------------------------------------------------------------------------------


def _check_get(
    where: str, principal: str, rel: str, case: Case
) -> Callable[[Tally, httpx.Response], None]:
    def then(t: Tally, answer: httpx.Response) -> None:
        body = answer.json()
        expected = view(principal, rel, case)
        t.check(f"{where} view", expected, _seen_as(body))
        lists = (body.get("handling") or {}).get("recipient_agencies") is not None
        t.check(f"{where} recipient lists shown", rel == "own" and expected == "content", lists)

    return then


def _check_access(
    where: str, principal: str, rel: str, case: Case
) -> Callable[[Tally, httpx.Response], None]:
    def then(t: Tally, answer: httpx.Response) -> None:
        body = answer.json()
        got = sorted({r["rule"] for r in body["reasons"]})
        t.check(f"{where} reasons", sorted(reasons(rel, case)), got)
        t.check(f"{where} can_edit", rel == "own" and CAN_WRITE[principal], body["can_edit"])

    return then


async def test_read_matrix(client: httpx.AsyncClient, world: World) -> None:
    """GET /alerts/{id} (content or tombstone) and GET /alerts/{id}/access (the reasons)."""
    calls: list[Call] = []
    for case, alert in world.alerts.items():
        for (rel, principal), headers in world.headers.items():
            expected = read_status(principal, rel, case)
            url = f"/api/v1/alerts/{alert['id']}"
            where = f"GET/{principal}/{rel}/{case.label}"
            calls.append(
                Call(
                    where,
                    "GET",
                    url,
                    headers,
                    expected,
                    then=_check_get(where, principal, rel, case),
                )
            )
            where = f"GET access/{principal}/{rel}/{case.label}"
            then = _check_access(where, principal, rel, case)
            calls.append(Call(where, "GET", f"{url}/access", headers, expected, then=then))
    t = Tally()
    await t.run(client, calls)
    t.assert_clean("reads")


# --- lists ----------------------------------------------------------------------------------


def _check_listing(
    name: str, principal: str, rel: str, world: World, *, by_serial: bool
) -> Callable[[Tally, httpx.Response], None]:
    def then(t: Tally, answer: httpx.Response) -> None:
        listed = {a["id"]: a for a in answer.json()["items"]}
        decoy = f"{name}/{principal}/{rel}/decoy without the serial"
        t.check(f"{decoy} listed", not by_serial, world.decoy_id in listed)
        for case, alert in world.alerts.items():
            where = f"{name}/{principal}/{rel}/{case.label}"
            # DESIGN §4: a tombstone is identity, withdrawal time and reason; the withdrawn
            # content (items, serials) must not be searchable by anybody but the originator,
            # nor red content by a client shown only a reference.
            shown = view(principal, rel, case)
            expected = bool(reasons(rel, case)) and not (by_serial and shown != "content")
            present = alert["id"] in listed
            t.check(f"{where} listed", expected, present)
            if expected and present:
                t.check(f"{where} view", shown, _seen_as(listed[alert["id"]]))

    return then


async def test_list_matrix(client: httpx.AsyncClient, world: World) -> None:
    """Appears in GET /alerts, and in GET /alerts?serial=<an item's serial>, or not."""
    calls: list[Call] = []
    for (rel, principal), headers in world.headers.items():
        expected = list_status(principal, rel)
        for name, query in (("GET list", ""), ("GET ?serial", f"&serial={SERIAL}")):
            then = _check_listing(name, principal, rel, world, by_serial=bool(query))
            url = f"/api/v1/alerts?limit=500{query}"
            calls.append(
                Call(f"{name}/{principal}/{rel}", "GET", url, headers, expected, then=then)
            )
    t = Tally()
    await t.run(client, calls)
    t.assert_clean("lists")


# --- writes ---------------------------------------------------------------------------------

CHANGE = {"title": "Changed by the matrix"}
WITHDRAWAL = {"reason": "Matrix"}
AFTER_SUCCESS = {"patch": ("title", CHANGE["title"]), "publish": ("status", "published")}
AFTER_SUCCESS["withdraw"] = ("status", "withdrawn")


def _write_call(
    where: str,
    endpoint: str,
    alert: dict,
    headers: dict[str, str],
    expected: int,
    *,
    reference: bool = False,
) -> Call:
    url = f"/api/v1/alerts/{alert['id']}"
    key, value = AFTER_SUCCESS[endpoint]
    if reference and key == "title":  # the answer to a writer that may not read red
        key, value = "reference", True

    def then(t: Tally, answer: httpx.Response) -> None:
        body = answer.json()
        t.check(f"{where} {key}", value, body[key])
        t.check(f"{where} version", alert["version"] + 1, body["version"])

    if endpoint == "patch":
        etag = {**headers, "If-Match": f'"{alert["version"]}"'}
        return Call(where, "PATCH", url, etag, expected, json=CHANGE, then=then)
    if endpoint == "publish":
        return Call(where, "POST", f"{url}/publish", headers, expected, then=then)
    return Call(where, "POST", f"{url}/withdraw", headers, expected, json=WITHDRAWAL, then=then)


async def test_write_matrix(client: httpx.AsyncClient, world: World) -> None:
    """PATCH /alerts/{id} (with the right If-Match), POST …/publish, POST …/withdraw.

    Refused writes change nothing, so they all go to the shared alerts; a write expected
    to succeed gets a fresh alert of its own, posted for it alone.
    """
    planned = [
        (endpoint, case, rel, principal, write_status(endpoint, principal, rel, case))
        for endpoint in WRITE_NEEDS
        for case in WRITE_CASES
        for (rel, principal) in world.headers
    ]
    fresh = await asyncio.gather(
        *(
            post_case(client, world, case, items=False)
            for _, case, _, _, expected in planned
            if expected == 200
        )
    )
    calls: list[Call] = []
    for endpoint, case, rel, principal, expected in planned:
        alert = fresh.pop(0) if expected == 200 else world.alerts[case]
        where = f"{endpoint}/{principal}/{rel}/{case.label}"
        shown = view(principal, rel, case)
        calls.append(
            _write_call(
                where,
                endpoint,
                alert,
                world.headers[(rel, principal)],
                expected,
                reference=shown == "reference",
            )
        )
    t = Tally()
    await t.run(client, calls)
    t.assert_clean("writes")
