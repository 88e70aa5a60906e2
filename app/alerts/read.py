"""Alert read models: answer bodies cut to what each reader may see, and who sees what."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import lifecycle, page
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
)
from app.authz import rules
from app.authz.principal import Principal
from app.sharing import membership, visibility
from app.sharing import service as sharing
from app.sharing.handling import AlertFacts, AlertKind, HandledRecord


async def read_models(
    session: AsyncSession, principal: Principal, alerts: Sequence[HandledRecord]
) -> list[AlertRead]:
    """Answer bodies for visible alerts (rows or ORM objects), children in one query."""
    return [AlertRead.model_validate(body) for body in await bodies(session, principal, alerts)]


async def bodies(
    session: AsyncSession, principal: Principal, alerts: Sequence[HandledRecord]
) -> list[dict[str, Any]]:
    """The `AlertRead` bodies, as plain dicts, of visible alerts: rows of
    `page.PAGE_COLUMNS` or ORM objects; their items and recipients in one query."""
    found = await page.page_children(session, principal, alerts)
    return [body_of(alert, principal, found) for alert in alerts]


def body_of(alert: Any, principal: Principal, found: page.PageChildren) -> dict[str, Any]:
    """The `AlertRead` body of one visible alert, cut to what the principal may see."""
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
        return {**base, "tombstone": True}
    if view is visibility.View.reference:
        return {
            **base,
            "tombstone": False,
            "reference": True,
            "tlp": alert.tlp,
            "url": f"/api/v1/alerts/{alert.id}",
        }
    shows_lists = visibility.sees_recipient_lists(alert, principal)
    handling = {
        "tlp": alert.tlp,
        "audience": alert.audience,
        "recipient_agencies": found.agencies.get(alert.id, []) if shows_lists else None,
        "recipient_groups": found.groups.get(alert.id, []) if shows_lists else None,
        "embargo_until": alert.embargo_until,
        "handling_codes": alert.handling_codes,
    }
    return {
        **base,
        "tombstone": False,
        "title": alert.title,
        "summary": alert.summary,
        "country": alert.country,
        "occurred_at": alert.occurred_at,
        "location": alert.location,
        "tags": alert.tags,
        "handling": handling,
        "details": alert.details,
        "items": found.items.get(alert.id, []),
    }


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
