"""The sharing rule twice: the SQL filter must return exactly what the predicate accepts.

`visible_filter()` (every alert query) and `can_see()` (deliveries, previews) state the
same rule of DESIGN §4. A hypothesis property test builds random populations of
agencies, sharing groups, memberships and alerts, writes them to the database, and
checks, for every agency, that the SQL filter and the Python predicate agree, on both
backends. A few hand-written examples pin the rule itself down, so that a rule wrong
in the same way on both sides still fails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, AgencyType
from app.alerts.models import Alert, AlertItem, AlertTag
from app.alerts.visible import visible_filter
from app.core.db import Database, create_engine
from app.sharing.handling import AlertFacts, AlertKind, AlertStatus, Audience
from app.sharing.models import (
    AlertRecipientAgency,
    AlertRecipientGroup,
    SharingGroup,
    SharingGroupMember,
)
from app.sharing.visibility import can_see, grants, reader_keys
from tests.conftest import settings_for

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

# Embargoes around NOW, down to the microsecond on either side of it (NOW itself: released).
EMBARGO_OFFSETS = (
    None,
    timedelta(days=-3),
    timedelta(microseconds=-1),
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(hours=2),
)
# The same instant written in other zones: the columns store UTC whatever the input zone.
ZONES = (UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5, minutes=-30)))

# Every table a population writes to, children first.
TABLES = (
    AlertRecipientGroup,
    AlertRecipientAgency,
    AlertItem,
    AlertTag,
    Alert,
    SharingGroupMember,
    SharingGroup,
    Agency,
)


# --------------------------------------------------------------------------- populations


@dataclass(frozen=True)
class GroupSpec:
    owner: int  # index into the agencies
    deleted: bool


@dataclass(frozen=True)
class AlertSpec:
    originator: int
    status: str
    kind: str
    audience: str
    addressed_to: int | None
    recipient_agencies: frozenset[int]
    recipient_groups: frozenset[int]
    embargo_offset: timedelta | None
    embargo_zone: timezone

    @property
    def embargo_until(self) -> datetime | None:
        if self.embargo_offset is None:
            return None
        return (NOW + self.embargo_offset).astimezone(self.embargo_zone)


@dataclass(frozen=True)
class Population:
    active: tuple[bool, ...]  # one per agency: active (True) or suspended
    groups: tuple[GroupSpec, ...]
    memberships: frozenset[tuple[int, int]]  # (agency, group)
    alerts: tuple[AlertSpec, ...]


def alert_specs(n_agencies: int, n_groups: int) -> st.SearchStrategy[AlertSpec]:
    agency = st.integers(0, n_agencies - 1)
    return st.builds(
        AlertSpec,
        originator=agency,
        status=st.sampled_from([s.value for s in AlertStatus]),
        kind=st.sampled_from([k.value for k in AlertKind]),
        audience=st.sampled_from([a.value for a in Audience]),
        addressed_to=st.none() | agency,
        recipient_agencies=st.frozensets(agency),
        recipient_groups=(
            st.frozensets(st.integers(0, n_groups - 1)) if n_groups else st.just(frozenset())
        ),
        embargo_offset=st.sampled_from(EMBARGO_OFFSETS),
        embargo_zone=st.sampled_from(ZONES),
    )


@st.composite
def populations(draw: st.DrawFn) -> Population:
    n_agencies = draw(st.integers(2, 6))
    active = tuple(draw(st.lists(st.booleans(), min_size=n_agencies, max_size=n_agencies)))
    groups = tuple(
        draw(
            st.lists(
                st.builds(GroupSpec, owner=st.integers(0, n_agencies - 1), deleted=st.booleans()),
                max_size=3,
            )
        )
    )
    memberships: frozenset[tuple[int, int]] = frozenset()
    if groups:
        memberships = draw(
            st.frozensets(
                st.tuples(st.integers(0, n_agencies - 1), st.integers(0, len(groups) - 1))
            )
        )
    alerts = tuple(draw(st.lists(alert_specs(n_agencies, len(groups)), min_size=1, max_size=12)))
    return Population(active=active, groups=groups, memberships=memberships, alerts=alerts)


# --------------------------------------------------------------------------- rows


def new_agency(*, active: bool = True) -> Agency:
    return Agency(
        name=f"Agency {uuid.uuid4().hex[:10]}",
        country="KE",
        type=AgencyType.police.value,
        status=(AgencyStatus.active if active else AgencyStatus.suspended).value,
    )


def new_alert(
    originator: uuid.UUID,
    *,
    status: str = AlertStatus.published.value,
    kind: str = AlertKind.seized_weapon.value,
    audience: str = Audience.community.value,
    addressed_to: uuid.UUID | None = None,
    embargo_until: datetime | None = None,
) -> Alert:
    return Alert(
        kind=kind,
        originator_agency_id=originator,
        created_by=uuid.uuid4(),
        created_by_kind="user",
        status=status,
        title="Rifles seized at the border",
        country="KE",
        tlp="amber",
        audience=audience,
        embargo_until=embargo_until,
        addressed_to_agency_id=addressed_to,
        created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1),
        sort_at=NOW - timedelta(days=1),
        published_at=None if status == AlertStatus.draft else NOW - timedelta(days=1),
        withdrawn_at=NOW - timedelta(hours=1) if status == AlertStatus.withdrawn else None,
    )


async def visible_ids(
    session: AsyncSession, agency_id: uuid.UUID, now: datetime = NOW
) -> set[uuid.UUID]:
    dialect = session.get_bind().dialect.name
    result = await session.exec(
        select(Alert.id).where(visible_filter(agency_id, now, dialect=dialect))
    )
    return set(result.all())


async def clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for model in TABLES:
            await conn.execute(sa.delete(model.__table__))  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the property


@dataclass
class Seen:
    """What the examples exercised, so that a degenerate generator cannot pass quietly."""

    rules: set[str]
    visible: int = 0
    hidden: int = 0


async def check_population(engine: AsyncEngine, population: Population, seen: Seen) -> None:
    await clear(engine)
    agencies = [new_agency(active=active) for active in population.active]
    groups = [
        SharingGroup(
            owner_agency_id=agencies[g.owner].id,
            name=f"Group {i}",
            deleted_at=NOW - timedelta(hours=1) if g.deleted else None,
        )
        for i, g in enumerate(population.groups)
    ]
    members = [
        SharingGroupMember(group_id=groups[g].id, agency_id=agencies[a].id)
        for a, g in sorted(population.memberships)
    ]
    alerts: list[Alert] = []
    facts: dict[uuid.UUID, AlertFacts] = {}
    recipients: list[AlertRecipientAgency | AlertRecipientGroup] = []
    for spec in population.alerts:
        alert = new_alert(
            agencies[spec.originator].id,
            status=spec.status,
            kind=spec.kind,
            audience=spec.audience,
            addressed_to=None if spec.addressed_to is None else agencies[spec.addressed_to].id,
            embargo_until=spec.embargo_until,
        )
        # Recipients (their rows, and `reader_keys` that PostgreSQL reads instead) are
        # written whatever the audience: the rule must ignore them unless it is `recipients`.
        named = [agencies[i].id for i in sorted(spec.recipient_agencies)]
        via = [groups[i].id for i in sorted(spec.recipient_groups)]
        alert.reader_keys = reader_keys(named, via)
        recipients += [AlertRecipientAgency(alert_id=alert.id, agency_id=a) for a in named]
        recipients += [AlertRecipientGroup(alert_id=alert.id, group_id=g) for g in via]
        alerts.append(alert)
        facts[alert.id] = AlertFacts.of(alert, named, via)

    async with AsyncSession(engine, expire_on_commit=False) as session:
        # Parents first: one flush per level keeps every foreign key satisfied.
        for level in (agencies, groups, [*members, *alerts], recipients):
            session.add_all(level)
            await session.flush()
        await session.commit()

    live_group_members = {
        group.id: frozenset(m.agency_id for m in members if m.group_id == group.id)
        for group in groups
        if group.deleted_at is None
    }
    index = {alert.id: i for i, alert in enumerate(alerts)}
    async with AsyncSession(engine) as session:
        for a, agency in enumerate(agencies):
            active = agency.status == AgencyStatus.active
            expected = set()
            for alert_id, alert_facts in facts.items():
                found = grants(
                    alert_facts,
                    agency.id,
                    agency_active=active,
                    live_group_members=live_group_members,
                    now=NOW,
                )
                seen.rules.update(g.rule for g in found)
                if can_see(
                    alert_facts,
                    agency.id,
                    agency_active=active,
                    live_group_members=live_group_members,
                    now=NOW,
                ):
                    expected.add(alert_id)
            got = await visible_ids(session, agency.id)
            seen.visible += len(expected)
            seen.hidden += len(facts) - len(expected)
            assert got == expected, (
                f"agency {a}: SQL sees alerts {sorted(index[i] for i in got)}, "
                f"the predicate {sorted(index[i] for i in expected)}"
            )


def test_sql_filter_equals_predicate(db_url: str) -> None:
    """For random populations, `visible_filter` returns exactly what `can_see` accepts."""
    runner = asyncio.Runner()
    engine = create_engine(settings_for(db_url))
    seen = Seen(rules=set())

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
        database=None,
    )
    @given(population=populations())
    def check(population: Population) -> None:
        runner.run(check_population(engine, population, seen))

    try:
        check()
    finally:
        runner.run(engine.dispose())
        runner.close()
    # Every way of seeing an alert, and of not seeing one, came up.
    assert seen.rules == {
        "originator",
        "addressee",
        "recipient_agency",
        "group_member",
        "community",
    }
    assert seen.visible and seen.hidden


# --------------------------------------------------------------------------- examples


async def agree(
    session: AsyncSession,
    agency: Agency,
    alert: Alert,
    *,
    recipient_agencies: Iterable[uuid.UUID] = (),
    recipient_groups: Iterable[uuid.UUID] = (),
    live_group_members: dict[uuid.UUID, frozenset[uuid.UUID]] | None = None,
    now: datetime = NOW,
) -> bool:
    """Whether `agency` sees `alert`, after asserting both forms of the rule say the same."""
    by_sql = alert.id in await visible_ids(session, agency.id, now)
    by_predicate = can_see(
        AlertFacts.of(alert, recipient_agencies, recipient_groups),
        agency.id,
        agency_active=agency.status == AgencyStatus.active,
        live_group_members=live_group_members or {},
        now=now,
    )
    assert by_sql == by_predicate
    return by_sql


async def test_removed_member_no_longer_sees_through_the_group(db: Database) -> None:
    owner, stays, leaves = new_agency(), new_agency(), new_agency()
    group = SharingGroup(owner_agency_id=owner.id, name="Great Lakes")
    alert = new_alert(owner.id, audience=Audience.recipients.value)
    alert.reader_keys = [group.id]
    leaving = SharingGroupMember(group_id=group.id, agency_id=leaves.id)
    async with db.session() as session:
        for level in (
            [owner, stays, leaves],
            [group, alert],
            [
                SharingGroupMember(group_id=group.id, agency_id=stays.id),
                leaving,
                AlertRecipientGroup(alert_id=alert.id, group_id=group.id),
            ],
        ):
            session.add_all(level)
            await session.flush()
        await session.commit()

        both = {group.id: frozenset({stays.id, leaves.id})}
        assert await agree(
            session, leaves, alert, recipient_groups=[group.id], live_group_members=both
        )

        await session.delete(leaving)
        await session.commit()

        one = {group.id: frozenset({stays.id})}
        assert not await agree(
            session, leaves, alert, recipient_groups=[group.id], live_group_members=one
        )
        assert await agree(
            session, stays, alert, recipient_groups=[group.id], live_group_members=one
        )
        assert await agree(
            session, owner, alert, recipient_groups=[group.id], live_group_members=one
        )

        # A deleted group grants nothing, not even to its remaining members.
        group.deleted_at = NOW - timedelta(minutes=5)
        session.add(group)
        await session.commit()
        assert not await agree(session, stays, alert, recipient_groups=[group.id])


async def test_embargoed_community_alert_is_the_originators_alone(db: Database) -> None:
    originator, other = new_agency(), new_agency()
    lifted_at = NOW + timedelta(hours=6)
    alert = new_alert(originator.id, embargo_until=lifted_at)
    async with db.session() as session:
        session.add_all([originator, other])
        await session.flush()
        session.add(alert)
        await session.commit()

        assert await agree(session, originator, alert)
        assert not await agree(session, other, alert)
        assert not await agree(session, other, alert, now=lifted_at - timedelta(microseconds=1))
        # The embargo lifts at its instant, not after it.
        assert await agree(session, other, alert, now=lifted_at)


async def test_draft_is_only_the_originators(db: Database) -> None:
    originator, addressee, named, bystander = (new_agency() for _ in range(4))
    draft = new_alert(
        originator.id,
        status=AlertStatus.draft.value,
        kind=AlertKind.trace_request.value,
        audience=Audience.community.value,
        addressed_to=addressee.id,
    )
    draft.reader_keys = [named.id]
    async with db.session() as session:
        session.add_all([originator, addressee, named, bystander])
        await session.flush()
        session.add(draft)
        await session.flush()
        session.add(AlertRecipientAgency(alert_id=draft.id, agency_id=named.id))
        await session.commit()

        assert await agree(session, originator, draft, recipient_agencies=[named.id])
        for agency in (addressee, named, bystander):
            assert not await agree(session, agency, draft, recipient_agencies=[named.id])


async def test_suspended_agency_loses_the_community_but_keeps_its_trace_requests(
    db: Database,
) -> None:
    originator, suspended = new_agency(), new_agency(active=False)
    community = new_alert(originator.id)
    request = new_alert(
        originator.id,
        kind=AlertKind.trace_request.value,
        audience=Audience.originator.value,
        addressed_to=suspended.id,
    )
    async with db.session() as session:
        session.add_all([originator, suspended])
        await session.flush()
        session.add_all([community, request])
        await session.commit()

        assert not await agree(session, suspended, community)
        assert await agree(session, suspended, request)
        assert await visible_ids(session, suspended.id) == {request.id}
