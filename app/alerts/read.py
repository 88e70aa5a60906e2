"""Alert read models: answer bodies cut to what each reader may see, and who sees what."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import children, lifecycle
from app.alerts.models import Alert
from app.alerts.schemas import (
    AccessRead,
    AccessReason,
    AlertRead,
    AudienceAgency,
    AudiencePreview,
    AudiencePreviewRequest,
    HandlingRead,
    HiddenGroup,
    ItemRead,
)
from app.authz import rules
from app.authz.principal import Principal
from app.sharing import membership, visibility
from app.sharing import service as sharing
from app.sharing.handling import AlertFacts, AlertKind


async def read_models(
    session: AsyncSession, principal: Principal, alerts: Sequence[Alert]
) -> list[AlertRead]:
    """Answer bodies for visible alerts, loading items and recipients in two queries each."""
    content_ids = [a.id for a in alerts if visibility.sees_content(a, principal)]
    items = await children.items_by_alert(session, content_ids)
    own_ids = [a.id for a in alerts if visibility.sees_recipient_lists(a, principal)]
    agencies, groups = await children.recipients_by_alert(session, own_ids)
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


async def explain_access(session: AsyncSession, principal: Principal, alert: Alert) -> AccessRead:
    """Which rules let the caller's agency see a visible alert, and whether it may edit it."""
    facts = await sharing.facts_of(session, alert)
    members = await membership.live_group_members(session, facts.recipient_groups)
    found = visibility.grants(
        facts, principal.agency_id, agency_active=True, live_group_members=members
    )
    return AccessRead(
        alert_id=alert.id,
        agency_id=principal.agency_id,
        reasons=[AccessReason(rule=g.rule, group_id=g.group_id) for g in found],
        can_edit=rules.can_edit(alert, principal),
    )


async def preview_audience(
    session: AsyncSession, principal: Principal, data: AudiencePreviewRequest
) -> AudiencePreview:
    """Which agencies would see an alert with this handling, and why; nothing is stored."""
    rules.require_alert_author(principal)
    addressed_to = data.addressed_to if data.kind is AlertKind.trace_request else None
    handling = await sharing.resolve_handling(
        session, principal, data.handling, kind=data.kind, addressed_to=addressed_to
    )
    facts = AlertFacts.published(
        handling, originator=principal.agency_id, kind=data.kind, addressed_to=addressed_to
    )
    hidden = await membership.hidden_member_counts(session, principal, handling.recipient_groups)
    # Never stored: only the fields a subscription's filters read (the others are required).
    draft = Alert(kind=data.kind, country=data.country or "", tlp=handling.tlp)  # type: ignore[call-arg]
    agencies: list[AudienceAgency] = []
    for agency, found in await sharing.audience_of(session, facts):
        shown = [g for g in found if g.group_id not in hidden]
        if shown:
            agencies.append(
                AudienceAgency(
                    id=agency.id,
                    name=agency.name,
                    country=agency.country,
                    reasons=[AccessReason(rule=g.rule, group_id=g.group_id) for g in shown],
                    subscriptions=await lifecycle.count_receiving(session, agency.id, draft)
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
