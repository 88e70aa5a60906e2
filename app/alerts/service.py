"""Alert writes: post, change, publish, withdraw and forward, always through app/sharing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.alerts import children, deadlines, lifecycle, rows
from app.alerts import query as alert_query
from app.alerts.models import Alert
from app.alerts.rows import NewAlert
from app.alerts.schemas import DETAILS_BY_KIND, AlertCreate, AlertUpdate, TraceRequestDetails
from app.audit import service as audit
from app.authz import rules
from app.authz.principal import Principal
from app.core import concurrency, patch
from app.core.errors import Conflict, FieldError, InvalidInput
from app.core.schemas import InputModel
from app.core.types import new_id, utcnow
from app.events import service as events
from app.events.models import EventType
from app.sharing import service as sharing
from app.sharing.handling import AUDIENCE_ORDER, AlertKind, AlertStatus, Audience, Handling


async def create_alert(session: AsyncSession, principal: Principal, data: AlertCreate) -> Alert:
    """Post an alert as a draft, or published at once."""
    new = await prepare_alert(session, principal, data)
    return (await store_alerts(session, principal, [new]))[0]


async def prepare_alert(session: AsyncSession, principal: Principal, data: AlertCreate) -> NewAlert:
    """Check a new alert and build its rows, writing nothing: refused (an `AppError`) when
    the principal may not post it as given."""
    rules.require_alert_author(principal)
    if data.publish:
        lifecycle.require()
    kind = AlertKind(data.kind)
    addressed_to = await _addressee(session, principal, data.details)
    handling = await sharing.resolve_handling(
        session, principal, data.handling, kind=kind, addressed_to=addressed_to
    )
    now = utcnow()
    alert = Alert(  # every field given: a default factory costs a signature inspection
        id=new_id(),
        kind=kind,
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
        tlp=handling.tlp,
        audience=handling.audience,
        handling_codes=[],
        reader_keys=[],
    )
    _apply_handling_fields(alert, handling)
    if kind is AlertKind.trace_request:
        deadlines.check_requested_deadlines(alert.details, now)
    return rows.new_alert(alert, items=data.items, tags=alert.tags, handling=handling)


async def store_alerts(
    session: AsyncSession, principal: Principal, news: Sequence[NewAlert]
) -> list[Alert]:
    """Write prepared alerts, one or a batch, with what their publication sets off: the
    same statements for any number of them (their rows, events, deliveries, matching)."""
    alerts = [new.alert for new in news]
    await audit.record_many(
        session,
        principal,
        [
            audit.Entry(
                "alert.create",
                object_type="alert",
                object_id=a.id,
                details={"status": a.status, "tlp": a.tlp, "audience": a.audience},
            )
            for a in alerts
        ],
    )
    # The records go with the alerts' own statement (outside a batch's savepoint).
    await children.write_new(session, news, audit_rows=audit.take_unwritten(session))
    published = [a for a in alerts if a.status == AlertStatus.published]
    if published:
        await _on_published(session, principal, published)
    return alerts


async def update_alert(
    session: AsyncSession,
    principal: Principal,
    alert_id: uuid.UUID,
    data: AlertUpdate,
    *,
    if_match: str | None,
) -> Alert:
    """Change an alert; `If-Match` must carry its current version (412 when stale)."""
    alert = await alert_query.get_visible_alert(session, principal, alert_id, for_change=True)
    rules.require_alert_editor(alert, principal)
    concurrency.check_version(alert.version, if_match, required=True, what="alert")
    if alert.status == AlertStatus.withdrawn:
        raise Conflict("A withdrawn alert cannot be changed.")
    if alert.status == AlertStatus.published and data.items is not None:
        lifecycle.require()
    changes = patch.changes_of(data, not_null=("title", "summary", "country", "tags", "items"))
    kind = alert.kind
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
                        field="details.addressed_to",
                        location="body",
                        message="fixed once the trace request is published",
                        type="addressee-fixed",
                    )
                ],
            )
        alert.addressed_to_agency_id = addressee
        alert.details = details.model_dump(mode="json")
    patch.apply_changes(alert, changes, fields=("title", "summary", "country", "occurred_at"))
    if "location" in changes:
        alert.location = data.location.model_dump() if data.location else None
    if data.tags is not None:
        alert.tags = list(dict.fromkeys(data.tags))
    handling: Handling | None = None
    if "handling" in changes or "details" in changes:
        current = data.handling or await children.current_handling(session, alert)
        handling = await sharing.resolve_handling(
            session, principal, current, kind=kind, addressed_to=alert.addressed_to_agency_id
        )
        _apply_handling_fields(alert, handling)
    await _bump(session, alert)
    await children.replace_children(
        session,
        alert,
        items=data.items,
        tags=alert.tags if data.tags is not None else None,
        handling=handling,
    )
    if alert.status == AlertStatus.published:
        await events.record(
            session, EventType.alert_updated, alert_id=alert.id, data={"version": alert.version}
        )
        if data.items is not None:
            await lifecycle.match(session, [alert])
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
    lifecycle.require()
    alert = await alert_query.get_visible_alert(session, principal, alert_id, for_change=True)
    rules.require_alert_editor(alert, principal)
    if alert.status != AlertStatus.draft:
        raise Conflict(f"Only a draft can be published; this alert is {alert.status}.")
    # The policy may have changed since the draft was written: check the handling again.
    await sharing.resolve_handling(
        session,
        principal,
        await children.current_handling(session, alert),
        kind=alert.kind,
        addressed_to=alert.addressed_to_agency_id,
    )
    now = utcnow()
    if alert.kind == AlertKind.trace_request:
        deadlines.check_requested_deadlines(alert.details, now)
    alert.status = AlertStatus.published
    alert.published_at = now
    alert.sort_at = now
    await _bump(session, alert)
    await _on_published(session, principal, [alert])
    await audit.record(session, principal, "alert.publish", object_type="alert", object_id=alert.id)
    return alert


async def _on_published(
    session: AsyncSession, principal: Principal, alerts: Sequence[Alert]
) -> None:
    """Everything the publication of alerts sets off, in the same transaction."""
    await events.record_all(
        session,
        [
            events.new_event(EventType.alert_published, alert_id=a.id, data={"version": a.version})
            for a in alerts
        ],
    )
    for alert in alerts:
        if alert.kind == AlertKind.trace_request:
            await lifecycle.start_workflow(session, principal, alert)
    await lifecycle.match(session, alerts)


async def withdraw_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, reason: str
) -> Alert:
    """Withdraw a published alert; its recipients keep a tombstone with the reason."""
    alert = await alert_query.get_visible_alert(session, principal, alert_id, for_change=True)
    rules.require_alert_editor(alert, principal)
    return await withdraw_locked(session, principal, alert, reason)


async def withdraw_locked(
    session: AsyncSession, principal: Principal, alert: Alert, reason: str
) -> Alert:
    """The one withdraw path, of an alert the caller locked and may withdraw: alert and
    workflow change together, with events and audit."""
    lifecycle.require()
    finish_workflow = None
    if alert.kind == AlertKind.trace_request:
        # The alert is locked; its workflow is locked second (always in this order). A
        # request already answered, closed or forwarded is no longer the requester's to
        # withdraw: the answer belongs to the requested agency as well (409).
        finish_workflow = await lifecycle.lock_for_withdrawal(session, alert)
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
    if finish_workflow is not None:
        await finish_workflow(session, principal, now)
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
    lifecycle.require()
    now = utcnow()
    details = {k: v for k, v in source.details.items() if k != "ack_due"}
    details["addressed_to"] = str(addressee)
    due = details.get("response_due")
    if due and datetime.fromisoformat(str(due)) < now:
        del details["response_due"]
    audience = min(source.audience, Audience.recipients, key=AUDIENCE_ORDER.__getitem__)
    handling = Handling(
        tlp=source.tlp, audience=audience, handling_codes=list(source.handling_codes)
    )
    alert = Alert(
        kind=AlertKind.trace_request,
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
        tlp=handling.tlp,
        audience=handling.audience,
        handling_codes=[],
        reader_keys=[],
    )
    _apply_handling_fields(alert, handling)
    items = (await children.items_by_alert(session, [source.id])).get(source.id, [])
    new = rows.new_alert(
        alert, items=rows.copied_items(alert.id, items), tags=alert.tags, handling=handling
    )
    await children.write_new(session, [new])
    await _on_published(session, principal, [alert])
    await audit.record(
        session,
        principal,
        "alert.create",
        object_type="alert",
        object_id=alert.id,
        details={"status": alert.status, "forwarded_from": str(source.id)},
    )
    return alert


# --- helpers ----------------------------------------------------------------------------


def etag(alert: Alert) -> str:
    """The strong ETag of an alert's current version."""
    return concurrency.etag(alert.version)


async def _bump(session: AsyncSession, alert: Alert, now: datetime | None = None) -> None:
    concurrency.bump(alert, now)
    session.add(alert)
    await session.flush()


def _parse_details(kind: AlertKind, raw: dict[str, object] | None) -> InputModel:
    try:
        return DETAILS_BY_KIND[kind].model_validate(raw or {})
    except ValidationError as exc:
        raise InvalidInput(
            "Invalid details for this kind of alert.",
            errors=[
                FieldError(
                    field=".".join(["details", *(str(p) for p in e["loc"])]),
                    location="body",
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
    field = "details.addressed_to"
    if details.addressed_to == principal.agency_id:
        raise InvalidInput.on(field, "a trace request goes to another agency")
    if await session.get(Agency, details.addressed_to) is None:
        raise InvalidInput.on(field, f"no agency {details.addressed_to}")
    return details.addressed_to


def _apply_handling_fields(alert: Alert, handling: Handling) -> None:
    alert.tlp = handling.tlp
    alert.audience = handling.audience
    alert.embargo_until = handling.embargo_until
    alert.handling_codes = list(handling.handling_codes)
