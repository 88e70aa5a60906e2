"""The handling vocabulary: TLP, audience, the one handling block and the facts the rule reads.

Everything that decides who may see a record speaks these words: the alert tables store
them, the rules (app/sharing/rules.py, visibility.py) read them, and imports map their
markings onto them. They live here, below the alerts, so that sharing never needs to
import the alerts package: the alert kinds and statuses are here too, since the rule
itself reads them (a trace request is seen by its addressee, only released alerts reach
anyone but the originator, and policies are set per kind).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import Field

from app.core.schemas import InputModel, Text40
from app.core.types import Instant


class AlertKind(StrEnum):
    seized_weapon = "seized_weapon"
    trace_request = "trace_request"
    suspicious_procurement = "suspicious_procurement"


class AlertStatus(StrEnum):
    draft = "draft"
    published = "published"
    withdrawn = "withdrawn"


# The statuses in which an alert reaches anyone but its originator (withdrawn: a tombstone).
RELEASED = (AlertStatus.published, AlertStatus.withdrawn)


class Tlp(StrEnum):
    """FIRST TLP 2.0, from the widest audience to the narrowest."""

    clear = "clear"
    green = "green"
    amber = "amber"
    amber_strict = "amber+strict"
    red = "red"


class Audience(StrEnum):
    """Who an alert is addressed to, from the narrowest to the widest."""

    originator = "originator"
    recipients = "recipients"
    community = "community"


TLP_ORDER = {tlp: rank for rank, tlp in enumerate(Tlp)}  # 0 = widest (clear)
AUDIENCE_ORDER = {aud: rank for rank, aud in enumerate(Audience)}  # 2 = widest (community)


class Handling(InputModel):
    """Who may see the alert (DESIGN §4)."""

    tlp: Tlp
    audience: Audience
    recipient_agencies: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    recipient_groups: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    embargo_until: Instant | None = None
    handling_codes: list[Text40] = Field(default_factory=list, max_length=20)


class HandledRecord(Protocol):
    """What the sharing rule reads of a stored alert: its handling columns.

    The alert table satisfies it, as a row (an instance) and as the table (the class,
    whose attributes are its columns): the rule's Python and SQL forms both take it, so
    that sharing never names the alert table itself.
    """

    id: uuid.UUID
    kind: AlertKind
    status: AlertStatus
    originator_agency_id: uuid.UUID
    addressed_to_agency_id: uuid.UUID | None
    tlp: Tlp
    audience: Audience
    embargo_until: datetime | None
    reader_keys: list[uuid.UUID]


@dataclass(frozen=True)
class AlertFacts:
    """What the rule needs to know about one alert, stored or about to be."""

    originator: uuid.UUID
    status: AlertStatus
    kind: AlertKind
    audience: Audience
    addressed_to: uuid.UUID | None
    recipient_agencies: frozenset[uuid.UUID]
    recipient_groups: frozenset[uuid.UUID]
    embargo_until: datetime | None

    @classmethod
    def of(
        cls,
        alert: HandledRecord,
        recipient_agencies: Iterable[uuid.UUID],
        recipient_groups: Iterable[uuid.UUID],
    ) -> AlertFacts:
        """A stored alert's facts: its columns and its recipient rows."""
        return cls(
            originator=alert.originator_agency_id,
            status=alert.status,
            kind=alert.kind,
            audience=alert.audience,
            addressed_to=alert.addressed_to_agency_id,
            recipient_agencies=frozenset(recipient_agencies),
            recipient_groups=frozenset(recipient_groups),
            embargo_until=alert.embargo_until,
        )

    @classmethod
    def published(
        cls,
        handling: Handling,
        *,
        originator: uuid.UUID,
        kind: AlertKind,
        addressed_to: uuid.UUID | None,
    ) -> AlertFacts:
        """The facts of an alert published with `handling` (an audience preview)."""
        return cls(
            originator=originator,
            status=AlertStatus.published,
            kind=kind,
            audience=handling.audience,
            addressed_to=addressed_to,
            recipient_agencies=frozenset(handling.recipient_agencies),
            recipient_groups=frozenset(handling.recipient_groups),
            embargo_until=handling.embargo_until,
        )
