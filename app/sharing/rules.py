"""Write-time sharing rules: TLP limits on the audience, policy ceilings, alert write rights."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from app.alerts.models import AUDIENCE_ORDER, TLP_ORDER, Alert, AlertKind, Audience, Tlp
from app.core.errors import FieldError, Forbidden, InvalidInput
from app.core.principal import Principal, Scope


class SharingRuleViolation(InvalidInput):
    """A handling block that breaks a TLP rule or the agency's policy ceiling."""

    slug, title = "sharing-rule-violation", "Sharing rule violated"

    def __init__(self, rule: str, field: str, message: str) -> None:
        super().__init__(
            f"{message} (rule `{rule}`)",
            errors=[FieldError(field=field, message=message, type=rule, location="body")],
            extra={"rule": rule},
        )


@dataclass(frozen=True)
class HandlingFacts:
    """The parts of a handling block the rules look at."""

    tlp: Tlp
    audience: Audience
    recipient_agencies: tuple[uuid.UUID, ...]
    recipient_groups: tuple[uuid.UUID, ...]


def check_tlp_rules(h: HandlingFacts, *, kind: AlertKind, field: str = "handling") -> None:
    """DESIGN §4: community needs clear/green; red goes to named agencies only."""
    has_recipients = bool(h.recipient_agencies or h.recipient_groups)
    if h.audience is Audience.community and h.tlp not in (Tlp.clear, Tlp.green):
        raise SharingRuleViolation(
            "tlp.community-needs-clear-or-green",
            f"{field}.audience",
            f"TLP:{h.tlp.value.upper()} may not go to the whole community; use clear or green",
        )
    if h.tlp is Tlp.red and h.recipient_groups:
        raise SharingRuleViolation(
            "tlp.red-named-agencies-only",
            f"{field}.recipient_groups",
            "TLP:RED goes to named agencies only, never to groups",
        )
    if h.audience is not Audience.recipients and has_recipients:
        raise SharingRuleViolation(
            "audience.recipients-unused",
            f"{field}.audience",
            "recipient_agencies and recipient_groups apply only when audience is `recipients`",
        )
    if (
        h.audience is Audience.recipients
        and not has_recipients
        and kind is not AlertKind.trace_request
    ):
        raise SharingRuleViolation(
            "audience.recipients-empty",
            f"{field}.recipient_agencies",
            "audience `recipients` needs at least one recipient agency or group",
        )


def check_ceiling(
    h: HandlingFacts,
    ceiling: dict[str, object] | None,
    *,
    kind: AlertKind,
    addressed_to: uuid.UUID | None,
    field: str = "handling",
) -> None:
    """The agency's policy ceiling for `kind`: a post beyond it is refused with 422."""
    if not ceiling:
        return
    prefix = f"policy.{kind.value}"
    widest_tlp = ceiling.get("widest_tlp")
    if widest_tlp and TLP_ORDER[h.tlp] < TLP_ORDER[Tlp(str(widest_tlp))]:
        raise SharingRuleViolation(
            f"{prefix}.widest_tlp",
            f"{field}.tlp",
            f"your agency's policy allows at widest TLP:{str(widest_tlp).upper()} for {kind.value}",
        )
    widest_audience = ceiling.get("widest_audience")
    if (
        widest_audience
        and AUDIENCE_ORDER[h.audience] > AUDIENCE_ORDER[Audience(str(widest_audience))]
    ):
        raise SharingRuleViolation(
            f"{prefix}.widest_audience",
            f"{field}.audience",
            f"your agency's policy allows at widest audience `{widest_audience}` for {kind.value}",
        )
    if ceiling.get("allow_groups") is False and h.recipient_groups:
        raise SharingRuleViolation(
            f"{prefix}.allow_groups",
            f"{field}.recipient_groups",
            f"your agency's policy does not allow sharing groups for {kind.value}",
        )
    if ceiling.get("addressee_only"):
        beyond = [a for a in h.recipient_agencies if a != addressed_to]
        if beyond or h.recipient_groups or h.audience is Audience.community:
            raise SharingRuleViolation(
                f"{prefix}.addressee_only",
                f"{field}.audience",
                f"your agency's policy keeps {kind.value} alerts to the addressee",
            )


def require_alert_reader(principal: Principal) -> None:
    """Reading alerts needs `alerts:read` (every user role has it)."""
    if not principal.has_scope(Scope.alerts_read):
        raise Forbidden("This needs the `alerts:read` scope.")


def require_alert_author(principal: Principal) -> None:
    """Posting alerts needs `alerts:write` (focal points and above, or such a client)."""
    if not principal.has_scope(Scope.alerts_write):
        raise Forbidden("Posting alerts needs the focal_point role or the `alerts:write` scope.")


def can_edit(alert: Alert, principal: Principal) -> bool:
    """Whether the principal may change a (visible) alert: an author of its originator."""
    return (
        principal.has_scope(Scope.alerts_write)
        and alert.originator_agency_id == principal.agency_id
    )


def require_alert_editor(alert: Alert, principal: Principal) -> None:
    """Refuse (403) a change to a visible alert by anyone but its originator's authors."""
    if not can_edit(alert, principal):
        raise Forbidden("Only focal points of the originating agency may change this alert.")


def duplicates(values: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Values given more than once."""
    seen: set[uuid.UUID] = set()
    twice: list[uuid.UUID] = []
    for value in values:
        if value in seen:
            twice.append(value)
        seen.add(value)
    return twice
