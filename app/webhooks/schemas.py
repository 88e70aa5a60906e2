"""Request and answer bodies for webhook subscriptions and deliveries."""

from __future__ import annotations

import uuid

from pydantic import Field

from app.core.schemas import CountryCode, InputModel, OutputModel, Text500OrEmpty, Text2000
from app.core.types import Instant
from app.events.models import EventType
from app.sharing.handling import AlertKind, Tlp
from app.webhooks.models import DeliveryStatus, SubscriptionStatus

Url = Text2000


class SubscriptionCreate(InputModel):
    url: Url = Field(description="https outside dev; must resolve to public addresses.")
    description: Text500OrEmpty = ""
    event_types: list[EventType] = Field(default_factory=list, description="Empty: all.")
    kinds: list[AlertKind] = Field(default_factory=list, description="Empty: all kinds.")
    countries: list[CountryCode] = Field(default_factory=list, max_length=250)
    max_tlp: Tlp | None = Field(default=None, description="The most sensitive TLP accepted.")


class SubscriptionUpdate(InputModel):
    url: Url | None = None
    description: Text500OrEmpty | None = None
    event_types: list[EventType] | None = None
    kinds: list[AlertKind] | None = None
    countries: list[CountryCode] | None = Field(default=None, max_length=250)
    max_tlp: Tlp | None = None
    status: SubscriptionStatus | None = Field(default=None, description="Re-enable or pause.")


class SubscriptionRead(OutputModel):
    id: uuid.UUID
    agency_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    kinds: list[str]
    countries: list[str]
    max_tlp: str | None
    status: SubscriptionStatus
    managed_by_kind: str | None = Field(
        description="`user` or `client` that created or last changed it; it carries alert "
        "content only while that principal holds `alerts:read` (else references)."
    )
    managed_by_id: uuid.UUID | None
    consecutive_failures: int
    disabled_reason: str | None
    previous_secret_expires_at: Instant | None
    version: int = Field(description="Bumps on every change; send it as `If-Match`.")
    created_at: Instant
    updated_at: Instant


class SubscriptionWithSecret(SubscriptionRead):
    secret: str = Field(description="`whsec_…`, shown once: verify signatures with it.")


class SubscriptionUpdated(SubscriptionRead):
    secret: str | None = Field(
        default=None,
        description="When the URL changed: the new `whsec_…` secret, shown this once (the "
        "old one stops at once, and the old URL's messages are not sent to the new one).",
    )


class SubscriptionPage(OutputModel):
    items: list[SubscriptionRead]
    next_cursor: str | None = None


class DeliveryRead(OutputModel):
    id: uuid.UUID = Field(description="`webhook-id` is `msg_` + this id without dashes.")
    subscription_id: uuid.UUID
    event_type: str
    alert_id: uuid.UUID | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Instant
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: float | None
    last_response: str | None = Field(
        description="At most the first 256 bytes of the last answer; none from an "
        "allow-listed (non-public) address."
    )
    created_at: Instant
    delivered_at: Instant | None


class DeliveryPage(OutputModel):
    items: list[DeliveryRead]
    next_cursor: str | None = None


class ReplayRequest(InputModel):
    since: Instant = Field(description="Re-send every delivery created since then.")


class ReplayResult(OutputModel):
    queued: int
