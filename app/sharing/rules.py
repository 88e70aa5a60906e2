"""Write-time sharing rules: TLP limits on the audience, policy ceilings.

Who may read, post or change alerts at all is `app.authz.rules`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from app.core.errors import FieldError, InvalidInput
from app.sharing.handling import (
    AUDIENCE_ORDER,
    TLP_ORDER,
    AlertKind,
    Audience,
    Handling,
    Tlp,
)


class SharingRuleViolation(InvalidInput):
    """A handling block that breaks a TLP rule or the agency's policy ceiling."""

    slug, title = "sharing-rule-violation", "Sharing rule violated"

    def __init__(self, rule: str, field: str, message: str) -> None:
        super().__init__(
            f"{message} (rule `{rule}`)",
            errors=[FieldError(field=field, message=message, type=rule, location="body")],
            extra={"rule": rule},
        )


def check_tlp_rules(h: Handling, *, kind: AlertKind, field: str = "handling") -> None:
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
    h: Handling,
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


def duplicates(values: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Values given more than once."""
    seen: set[uuid.UUID] = set()
    twice: list[uuid.UUID] = []
    for value in values:
        if value in seen:
            twice.append(value)
        seen.add(value)
    return twice
