"""Alerts: post, read, change, publish, withdraw and query, always through app/sharing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.agencies.models import Agency
from app.alerts import search
from app.alerts.models import (
    AUDIENCE_ORDER,
    Alert,
    AlertItem,
    AlertKind,
    AlertRecipientAgency,
    AlertRecipientGroup,
    AlertStatus,
    AlertTag,
    Audience,
)
from app.alerts.schemas import (
    DETAILS_BY_KIND,
    AccessRead,
    AccessReason,
    AlertCreate,
    AlertRead,
    AlertUpdate,
    AudienceAgency,
    AudiencePreview,
    AudiencePreviewRequest,
    Handling,
    HandlingRead,
    HiddenGroup,
    ItemIn,
    ItemRead,
    TraceRequestDetails,
)
from app.audit import service as audit
from app.core import concurrency
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.core.principal import Principal
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.hits import service as hits
from app.hits.serials import make_key, serial_key
from app.sharing import parties, rules, visibility
from app.sharing import service as sharing
from app.traces import service as traces
from app.webhooks import outbox

# --- reading ----------------------------------------------------------------------------


async def get_visible_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, *, for_change: bool = False
) -> Alert:
    """The alert if the principal's agency may see it; 404 otherwise (never 403).

    `for_change` locks it (app/core/concurrency.py): every change of an alert loads it so,
    and checks its version and status only then.
    """
    rules.require_alert_reader(principal)
    dialect = session.bind.dialect.name
    query = visibility.visible_alerts(principal, dialect=dialect).where(Alert.id == alert_id)
    if for_change:
        query = concurrency.for_change(query, Alert)
    alert = (await session.exec(query)).first()
    if alert is None:
        raise NotFound("No such alert.")
    return alert


async def read_alert(session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    """GET of one alert: a visible alert, its read recorded in the audit trail."""
    alert = await get_visible_alert(session, principal, alert_id)
    await audit.record_reads(session, principal, [alert.id], "alert.read")
    return alert


@dataclass(frozen=True)
class AlertFilters:
    kind: AlertKind | None = None
    status: AlertStatus | None = None
    country: str | None = None
    tlp: str | None = None
    originator: uuid.UUID | None = None
    tag: str | None = None
    serial: str | None = None
    q: str | None = None
    occurred_since: datetime | None = None
    occurred_until: datetime | None = None
    updated_since: datetime | None = None


def list_query(
    dialect: str,
    principal: Principal,
    filters: AlertFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> SelectOfScalar[Alert]:
    """The list query (one page plus one row), built on the sharing rule's filter."""
    query = visibility.visible_alerts(principal, dialect=dialect)
    f = filters
    # Identity filters: a tombstone shows kind, status, originator and times.
    if f.kind:
        query = query.where(Alert.kind == f.kind.value)
    if f.status:
        query = query.where(Alert.status == f.status.value)
    if f.originator:
        query = query.where(Alert.originator_agency_id == f.originator)
    # Content filters: never matched against a withdrawn alert's hidden content, or
    # trying values would reveal it.
    content: list[sa.ColumnElement[bool]] = []
    if f.country:
        content.append(Alert.country == f.country)
    if f.tlp:
        content.append(Alert.tlp == f.tlp)
    if f.tag:
        content.append(sa.exists().where(AlertTag.alert_id == Alert.id, AlertTag.tag == f.tag))
    if f.serial:
        key = serial_key(f.serial, "present")
        if key is None:
            raise InvalidInput.on("query.serial", "no letters or digits to match")
        content.append(
            sa.exists().where(AlertItem.alert_id == Alert.id, AlertItem.serial_key == key)
        )
    if f.q:
        content.append(search.matches(dialect, f.q))
    if f.occurred_since:
        content.append(col(Alert.occurred_at) >= f.occurred_since)
    if f.occurred_until:
        content.append(col(Alert.occurred_at) < f.occurred_until)
    if content:
        query = query.where(
            visibility.content_filter(principal.agency_id, principal=principal), *content
        )
    if f.updated_since:
        query = query.where(col(Alert.updated_at) >= f.updated_since)
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(Alert.sort_at, Alert.id) < sa.tuple_(at, row_id))
    return query.order_by(col(Alert.sort_at).desc(), col(Alert.id).desc()).limit(limit + 1)


async def list_alerts(
    session: AsyncSession,
    principal: Principal,
    filters: AlertFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> tuple[Sequence[Alert], str | None]:
    """Visible alerts matching the filters, newest first, one keyset page."""
    rules.require_alert_reader(principal)
    query = list_query(session.bind.dialect.name, principal, filters, limit=limit, cursor=cursor)
    rows = (await session.exec(query)).all()
    page = rows[:limit]
    # A search result is a read of what it returns.
    await audit.record_reads(session, principal, [a.id for a in page], "alert.list")
    if len(rows) > limit:
        last = rows[limit - 1]
        return page, encode_cursor(last.sort_at, last.id)
    return page, None


async def activity(
    session: AsyncSession, principal: Principal, since: datetime, *, limit: int = 2000
) -> list[tuple[str, datetime]]:
    """(kind, time) of the visible alerts changed since `since`, newest first, for charts.

    Identity fields only, through the list's own query: nothing of any content is read.
    """
    rules.require_alert_reader(principal)
    dialect = session.bind.dialect.name
    query = list_query(dialect, principal, AlertFilters(updated_since=since), limit=limit)
    return [(a.kind, a.sort_at) for a in (await session.exec(query)).all()]


async def read_models(
    session: AsyncSession, principal: Principal, alerts: Sequence[Alert]
) -> list[AlertRead]:
    """Answer bodies for visible alerts, loading items and recipients in two queries each."""
    content_ids = [a.id for a in alerts if visibility.sees_content(a, principal)]
    items = await _items_by_alert(session, content_ids)
    own_ids = [a.id for a in alerts if visibility.sees_recipient_lists(a, principal)]
    agencies, groups = await _recipients_by_alert(session, own_ids)
    out: list[AlertRead] = []
    for alert in alerts:
        base = {
            "id": alert.id,
            "kind": alert.kind,
            "status": alert.status,
            "version": alert.version,
            "originator_agency_id": alert.originator_agency_id,
            "addressed_to_agency_id": alert.addressed_to_agency_id,
            "created_at": alert.created_at,
            "updated_at": alert.updated_at,
            "published_at": alert.published_at,
            "withdrawn_at": alert.withdrawn_at,
            "withdrawal_reason": alert.withdrawal_reason,
        }
        view = visibility.view_of(alert, principal)
        if view is visibility.View.tombstone:
            out.append(AlertRead(**base, tombstone=True))
            continue
        if view is visibility.View.reference:
            out.append(
                AlertRead(
                    **base,
                    tombstone=False,
                    reference=True,
                    tlp=alert.tlp,
                    url=f"/api/v1/alerts/{alert.id}",
                )
            )
            continue
        shows_lists = visibility.sees_recipient_lists(alert, principal)
        handling = HandlingRead(
            tlp=alert.tlp,
            audience=alert.audience,
            recipient_agencies=agencies.get(alert.id, []) if shows_lists else None,
            recipient_groups=groups.get(alert.id, []) if shows_lists else None,
            embargo_until=alert.embargo_until,
            handling_codes=alert.handling_codes,
        )
        out.append(
            AlertRead(
                **base,
                tombstone=False,
                title=alert.title,
                summary=alert.summary,
                country=alert.country,
                occurred_at=alert.occurred_at,
                location=alert.location,
                tags=alert.tags,
                handling=handling,
                details=alert.details,
                items=[ItemRead.model_validate(i) for i in items.get(alert.id, [])],
            )
        )
    return out


async def _items_by_alert(
    session: AsyncSession, alert_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[AlertItem]]:
    if not alert_ids:
        return {}
    rows = await session.exec(
        select(AlertItem)
        .where(col(AlertItem.alert_id).in_(alert_ids))
        .order_by(col(AlertItem.alert_id), col(AlertItem.position))
    )
    out: dict[uuid.UUID, list[AlertItem]] = {}
    for item in rows.all():
        out.setdefault(item.alert_id, []).append(item)
    return out


async def _recipients_by_alert(
    session: AsyncSession, alert_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[uuid.UUID]], dict[uuid.UUID, list[uuid.UUID]]]:
    agencies: dict[uuid.UUID, list[uuid.UUID]] = {}
    groups: dict[uuid.UUID, list[uuid.UUID]] = {}
    if not alert_ids:
        return agencies, groups
    for row in (
        await session.exec(
            select(AlertRecipientAgency).where(col(AlertRecipientAgency.alert_id).in_(alert_ids))
        )
    ).all():
        agencies.setdefault(row.alert_id, []).append(row.agency_id)
    for row in (
        await session.exec(
            select(AlertRecipientGroup).where(col(AlertRecipientGroup.alert_id).in_(alert_ids))
        )
    ).all():
        groups.setdefault(row.alert_id, []).append(row.group_id)
    return agencies, groups


async def explain_access(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID
) -> AccessRead:
    """Which rules let the caller's agency see the alert, and whether it may edit it."""
    alert = await get_visible_alert(session, principal, alert_id)
    facts = await sharing.facts_of(session, alert)
    members = await sharing.live_group_members(session, facts.recipient_groups)
    found = visibility.grants(
        facts, principal.agency_id, agency_active=True, live_group_members=members
    )
    return AccessRead(
        alert_id=alert.id,
        agency_id=principal.agency_id,
        reasons=[AccessReason(rule=g.rule, group_id=g.group_id) for g in found],  # type: ignore[arg-type]
        can_edit=rules.can_edit(alert, principal),
    )


# --- writing ----------------------------------------------------------------------------


async def create_alert(session: AsyncSession, principal: Principal, data: AlertCreate) -> Alert:
    """Post an alert as a draft, or published at once."""
    rules.require_alert_author(principal)
    kind = AlertKind(data.kind)
    addressed_to = await _addressee(session, principal, data.details)
    handling = await sharing.resolve_handling(
        session, principal, data.handling, kind=kind, addressed_to=addressed_to
    )
    now = utcnow()
    alert = Alert(
        kind=kind.value,
        originator_agency_id=principal.agency_id,
        created_by=principal.id,
        created_by_kind=principal.kind,
        status=AlertStatus.published if data.publish else AlertStatus.draft,
        title=data.title,
        summary=data.summary,
        country=data.country,
        occurred_at=data.occurred_at,
        location=data.location.model_dump() if data.location else None,
        tags=list(dict.fromkeys(data.tags)),
        details=data.details.model_dump(mode="json"),
        addressed_to_agency_id=addressed_to,
        created_at=now,
        updated_at=now,
        sort_at=now,
        published_at=now if data.publish else None,
        tlp=handling.tlp.value,
        audience=handling.audience.value,
    )
    _apply_handling_fields(alert, handling)
    if kind is AlertKind.trace_request:
        traces.check_requested_deadlines(alert.details, now)
    session.add(alert)
    await session.flush()
    await _write_children(session, alert, items=data.items, tags=alert.tags, handling=handling)
    if data.publish:
        await _on_published(session, principal, alert)
    await audit.record(
        session,
        principal,
        "alert.create",
        object_type="alert",
        object_id=alert.id,
        details={"status": alert.status, "tlp": alert.tlp, "audience": alert.audience},
    )
    return alert


async def update_alert(
    session: AsyncSession,
    principal: Principal,
    alert_id: uuid.UUID,
    data: AlertUpdate,
    *,
    if_match: str | None,
) -> Alert:
    """Change an alert; `If-Match` must carry its current version (412 when stale)."""
    alert = await get_visible_alert(session, principal, alert_id, for_change=True)
    rules.require_alert_editor(alert, principal)
    concurrency.check_version(alert.version, if_match, required=True, what="alert")
    if alert.status == AlertStatus.withdrawn:
        raise Conflict("A withdrawn alert cannot be changed.")
    changes = data.model_dump(exclude_unset=True)
    for field in ("title", "summary", "country", "tags", "items"):
        if field in changes and changes[field] is None:
            raise InvalidInput.on(f"body.{field}", "may not be null")
    kind = AlertKind(alert.kind)
    if "details" in changes:
        details = _parse_details(kind, data.details)
        addressee = await _addressee(session, principal, details)
        if alert.status != AlertStatus.draft and addressee != alert.addressed_to_agency_id:
            # The requested agency has the request (and maybe has answered it): moving it
            # elsewhere is the requested agency's own step, `forward`, never an edit.
            raise Conflict(
                "A published trace request keeps its addressee; the requested agency may "
                "forward it instead.",
                errors=[
                    FieldError(
                        field="body.details.addressed_to",
                        message="fixed once the trace request is published",
                        type="addressee-fixed",
                    )
                ],
            )
        alert.addressed_to_agency_id = addressee
        alert.details = details.model_dump(mode="json")
    for field in ("title", "summary", "country", "occurred_at"):
        if field in changes:
            setattr(alert, field, changes[field])
    if "location" in changes:
        alert.location = data.location.model_dump() if data.location else None
    if data.tags is not None:
        alert.tags = list(dict.fromkeys(data.tags))
    handling: Handling | None = None
    if "handling" in changes or "details" in changes:
        current = data.handling or await _current_handling(session, alert)
        handling = await sharing.resolve_handling(
            session, principal, current, kind=kind, addressed_to=alert.addressed_to_agency_id
        )
        _apply_handling_fields(alert, handling)
    await _bump(session, alert)
    await _write_children(
        session,
        alert,
        items=data.items,
        tags=alert.tags if data.tags is not None else None,
        handling=handling,
        replace=True,
    )
    if alert.status == AlertStatus.published:
        await events.record(
            session, EventType.alert_updated, alert_id=alert.id, data={"version": alert.version}
        )
        if data.items is not None:
            await hits.match_alert(session, alert)
    await audit.record(
        session,
        principal,
        "alert.update",
        object_type="alert",
        object_id=alert.id,
        details={"version": alert.version, "fields": sorted(changes)},
    )
    return alert


async def publish_alert(session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    """Publish a draft: from now on it reaches its audience."""
    alert = await get_visible_alert(session, principal, alert_id, for_change=True)
    rules.require_alert_editor(alert, principal)
    if alert.status != AlertStatus.draft:
        raise Conflict(f"Only a draft can be published; this alert is {alert.status}.")
    # The policy may have changed since the draft was written: check the handling again.
    await sharing.resolve_handling(
        session,
        principal,
        await _current_handling(session, alert),
        kind=AlertKind(alert.kind),
        addressed_to=alert.addressed_to_agency_id,
    )
    now = utcnow()
    if alert.kind == AlertKind.trace_request:
        traces.check_requested_deadlines(alert.details, now)
    alert.status = AlertStatus.published
    alert.published_at = now
    alert.sort_at = now
    await _bump(session, alert)
    await _on_published(session, principal, alert)
    await audit.record(session, principal, "alert.publish", object_type="alert", object_id=alert.id)
    return alert


async def _on_published(session: AsyncSession, principal: Principal, alert: Alert) -> None:
    """Everything a publication sets off, in the same transaction."""
    await events.record(
        session, EventType.alert_published, alert_id=alert.id, data={"version": alert.version}
    )
    if alert.kind == AlertKind.trace_request:
        await traces.submit(session, principal, alert)
    await hits.match_alert(session, alert)


async def withdraw_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, reason: str
) -> Alert:
    """Withdraw a published alert; its recipients keep a tombstone with the reason."""
    alert = await get_visible_alert(session, principal, alert_id, for_change=True)
    rules.require_alert_editor(alert, principal)
    return await _withdraw(session, principal, alert, reason)


async def withdraw_trace_request(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, reason: str
) -> Alert:
    """The requester's `withdraw` step: the same withdrawal, allowed as a workflow step."""
    trace, _ = await traces.get_trace(session, principal, alert_id)
    parties.require_trace_actor(trace, principal, "requester")
    alert = await get_visible_alert(session, principal, alert_id, for_change=True)
    return await _withdraw(session, principal, alert, reason)


async def _withdraw(
    session: AsyncSession, principal: Principal, alert: Alert, reason: str
) -> Alert:
    """The one withdraw path: alert and workflow change together, with events and audit."""
    trace = None
    if alert.kind == AlertKind.trace_request:
        # The alert is locked; its workflow is locked second (always in this order).
        trace = await traces.lock_trace(session, alert.id)
    if trace is not None:
        # A request already answered, closed or forwarded is no longer the requester's
        # to withdraw: the answer belongs to the requested agency as well.
        traces.require_step(trace, "withdraw")
    if alert.status != AlertStatus.published:
        raise Conflict(f"Only a published alert can be withdrawn; this alert is {alert.status}.")
    now = utcnow()
    alert.status = AlertStatus.withdrawn
    alert.withdrawn_at = now
    alert.withdrawal_reason = reason
    await _bump(session, alert, now)
    await events.record(
        session, EventType.alert_withdrawn, alert_id=alert.id, data={"version": alert.version}
    )
    if trace is not None:
        await traces.withdraw(session, principal, trace, now)
    await audit.record(
        session, principal, "alert.withdraw", object_type="alert", object_id=alert.id
    )
    return alert


async def create_forwarded_copy(
    session: AsyncSession, principal: Principal, source: Alert, addressee: uuid.UUID
) -> Alert:
    """A trace request's copy addressed to `addressee` only, published (a forward).

    It is still the requester's request (originator and author are the source's), goes
    to the new addressee alone (the narrower of the source's audience and `recipients`,
    no named recipients, same TLP and handling codes), and its deadlines start afresh,
    keeping a requested `response_due` that has not passed.
    """
    now = utcnow()
    details = {k: v for k, v in source.details.items() if k != "ack_due"}
    details["addressed_to"] = str(addressee)
    due = details.get("response_due")
    if due and datetime.fromisoformat(str(due)) < now:
        del details["response_due"]
    audience = min(Audience(source.audience), Audience.recipients, key=AUDIENCE_ORDER.get)
    handling = Handling(
        tlp=source.tlp, audience=audience, handling_codes=list(source.handling_codes)
    )
    alert = Alert(
        kind=AlertKind.trace_request.value,
        originator_agency_id=source.originator_agency_id,
        created_by=source.created_by,
        created_by_kind=source.created_by_kind,
        status=AlertStatus.published,
        title=source.title,
        summary=source.summary,
        country=source.country,
        occurred_at=source.occurred_at,
        location=source.location,
        tags=list(source.tags),
        details=details,
        addressed_to_agency_id=addressee,
        created_at=now,
        updated_at=now,
        sort_at=now,
        published_at=now,
        tlp=handling.tlp.value,
        audience=handling.audience.value,
    )
    _apply_handling_fields(alert, handling)
    session.add(alert)
    await session.flush()
    items = (await _items_by_alert(session, [source.id])).get(source.id, [])
    session.add_all(
        AlertItem(**item.model_dump(exclude={"id", "alert_id"}), alert_id=alert.id)
        for item in items
    )
    await _write_children(session, alert, items=None, tags=alert.tags, handling=handling)
    await _on_published(session, principal, alert)
    await audit.record(
        session,
        principal,
        "alert.create",
        object_type="alert",
        object_id=alert.id,
        details={"status": alert.status, "forwarded_from": str(source.id)},
    )
    return alert


async def preview_audience(
    session: AsyncSession, principal: Principal, data: AudiencePreviewRequest
) -> AudiencePreview:
    """Which agencies would see an alert with this handling, and why; nothing is stored."""
    rules.require_alert_author(principal)
    addressed_to = data.addressed_to if data.kind is AlertKind.trace_request else None
    handling = await sharing.resolve_handling(
        session, principal, data.handling, kind=data.kind, addressed_to=addressed_to
    )
    facts = visibility.AlertFacts(
        originator=principal.agency_id,
        status=AlertStatus.published.value,
        kind=data.kind.value,
        audience=handling.audience.value,
        addressed_to=addressed_to,
        recipient_agencies=frozenset(handling.recipient_agencies),
        recipient_groups=frozenset(handling.recipient_groups),
        embargo_until=handling.embargo_until,
    )
    hidden = await sharing.hidden_member_counts(session, principal, handling.recipient_groups)
    draft = Alert(kind=data.kind.value, country=data.country or "", tlp=handling.tlp.value)
    agencies: list[AudienceAgency] = []
    for agency, found in await sharing.audience_of(session, facts):
        shown = [g for g in found if g.group_id not in hidden]
        if shown:
            agencies.append(
                AudienceAgency(
                    id=agency.id,
                    name=agency.name,
                    country=agency.country,
                    reasons=[AccessReason(rule=g.rule, group_id=g.group_id) for g in shown],  # type: ignore[arg-type]
                    subscriptions=await outbox.count_receiving(
                        session, agency.id, EventType.alert_published.value, draft
                    )
                    if sharing.shows_subscription_count(principal, agency.id)
                    else None,
                )
            )
    return AudiencePreview(
        handling=HandlingRead(**handling.model_dump()),
        agencies=agencies,
        hidden_groups=[HiddenGroup(group_id=g, member_count=n) for g, n in hidden.items()],
        embargoed_until=handling.embargo_until,
    )


# --- helpers ----------------------------------------------------------------------------


def etag(alert: Alert) -> str:
    """The strong ETag of an alert's current version."""
    return concurrency.etag(alert.version)


async def _bump(session: AsyncSession, alert: Alert, now: datetime | None = None) -> None:
    concurrency.bump(alert, now)
    session.add(alert)
    await session.flush()


def _parse_details(kind: AlertKind, raw: dict[str, object] | None) -> object:
    try:
        return DETAILS_BY_KIND[kind].model_validate(raw or {})
    except ValidationError as exc:
        raise InvalidInput(
            "Invalid details for this kind of alert.",
            errors=[
                FieldError(
                    field=".".join(["body", "details", *(str(p) for p in e["loc"])]),
                    message=e["msg"],
                    type=e["type"],
                )
                for e in exc.errors()
            ],
        ) from exc


async def _addressee(
    session: AsyncSession, principal: Principal, details: object
) -> uuid.UUID | None:
    if not isinstance(details, TraceRequestDetails):
        return None
    field = "body.details.addressed_to"
    if details.addressed_to == principal.agency_id:
        raise InvalidInput.on(field, "a trace request goes to another agency")
    if await session.get(Agency, details.addressed_to) is None:
        raise InvalidInput.on(field, f"no agency {details.addressed_to}")
    return details.addressed_to


def _apply_handling_fields(alert: Alert, handling: Handling) -> None:
    alert.tlp = handling.tlp.value
    alert.audience = handling.audience.value
    alert.embargo_until = handling.embargo_until
    alert.handling_codes = list(handling.handling_codes)


async def _current_handling(session: AsyncSession, alert: Alert) -> Handling:
    agencies, groups = await _recipients_by_alert(session, [alert.id])
    return Handling(
        tlp=alert.tlp,
        audience=alert.audience,
        recipient_agencies=agencies.get(alert.id, []),
        recipient_groups=groups.get(alert.id, []),
        embargo_until=alert.embargo_until,
        handling_codes=alert.handling_codes,
    )


async def _write_children(
    session: AsyncSession,
    alert: Alert,
    *,
    items: list[ItemIn] | None,
    tags: list[str] | None,
    handling: Handling | None,
    replace: bool = False,
) -> None:
    """Items, tags and recipients (each only when given), then the search text."""
    item_rows: list[AlertItem] | None = None
    if items is not None:
        if replace:
            await session.exec(delete(AlertItem).where(col(AlertItem.alert_id) == alert.id))
        item_rows = [_item_row(alert.id, position, item) for position, item in enumerate(items)]
        session.add_all(item_rows)
    if tags is not None:
        if replace:
            await session.exec(delete(AlertTag).where(col(AlertTag.alert_id) == alert.id))
        for tag in tags:
            session.add(AlertTag(alert_id=alert.id, tag=tag))
    if handling is not None:
        if replace:
            await session.exec(
                delete(AlertRecipientAgency).where(col(AlertRecipientAgency.alert_id) == alert.id)
            )
            await session.exec(
                delete(AlertRecipientGroup).where(col(AlertRecipientGroup.alert_id) == alert.id)
            )
        alert.reader_keys = []
        if handling.audience is Audience.recipients:
            alert.reader_keys = visibility.reader_keys(
                handling.recipient_agencies, handling.recipient_groups
            )
            # Plain multi-row INSERTs: an alert may name hundreds of recipients.
            for model, column, ids in (
                (AlertRecipientAgency, "agency_id", handling.recipient_agencies),
                (AlertRecipientGroup, "group_id", handling.recipient_groups),
            ):
                if ids:
                    await session.exec(
                        sa.insert(model),  # type: ignore[call-overload]
                        params=[{"alert_id": alert.id, column: i} for i in dict.fromkeys(ids)],
                    )
    await session.flush()
    if item_rows is None:
        item_rows = (await _items_by_alert(session, [alert.id])).get(alert.id, [])
    alert.search_text = _search_text(alert, item_rows)
    session.add(alert)
    await session.flush()
    await search.index_alert(session, alert)


def _item_row(alert_id: uuid.UUID, position: int, item: ItemIn) -> AlertItem:
    return AlertItem(
        alert_id=alert_id,
        position=position,
        category=item.category.value,
        make=item.make,
        make_key=make_key(item.make),
        model=item.model,
        calibre=item.calibre,
        type=item.type,
        country_of_manufacture=item.country_of_manufacture,
        year=item.year,
        serial_raw=item.serial_raw,
        serial_status=item.serial_status.value,
        serial_key=serial_key(item.serial_raw, item.serial_status.value),
        markings=[m.model_dump() for m in item.markings],
        lot=item.lot,
        quantity=item.quantity,
        unit=item.unit.value,
    )


def _search_text(alert: Alert, items: list[AlertItem]) -> str:
    parts: list[str | None] = [alert.title, alert.summary, " ".join(alert.tags)]
    if alert.location:
        parts.append(str(alert.location.get("text") or ""))
    for item in items:
        parts += [item.make, item.model, item.calibre, item.type, item.serial_raw, item.serial_key]
        parts += [item.lot]
        for marking in item.markings:
            parts += [marking.get("text"), marking.get("transliteration")]
    return search.search_document(*parts)
