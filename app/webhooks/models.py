"""Tables: webhook subscriptions, their deliveries (the outbox) and every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from app.authz.principal import ActorKind
from app.core.columns import EnumText
from app.core.types import UTCDateTime, empty_dict, empty_list, new_id, utcnow
from app.events.models import EventType
from app.sharing.handling import Tlp


class SubscriptionStatus(StrEnum):
    active = "active"
    disabled = "disabled"


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivering = "delivering"
    delivered = "delivered"
    failed = "failed"
    cancelled = "cancelled"


class Subscription(SQLModel, table=True):
    """An agency's endpoint and the events, kinds, countries and TLP it wants."""

    __tablename__ = "webhook_subscription"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True, ondelete="RESTRICT")
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    kinds: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    countries: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    max_tlp: Tlp | None = Field(default=None, sa_type=EnumText(Tlp, 20))
    # Signing needs the secret itself; `previous_secret` keeps signing until it expires.
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: SubscriptionStatus = Field(
        default=SubscriptionStatus.active, sa_type=EnumText(SubscriptionStatus, 20)
    )
    # Who created it or last changed it: it carries content only while they may read
    # alerts (app/sharing/render.py). None (older rows no record names): references only.
    managed_by_kind: ActorKind | None = Field(default=None, sa_type=EnumText(ActorKind, 10))
    managed_by_id: uuid.UUID | None = None
    # Bumped when the URL changes: deliveries of an earlier URL never go to the new one.
    url_epoch: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    consecutive_failures: int = 0
    disabled_reason: str | None = Field(default=None, max_length=200)
    version: int = 1  # bumps on every change (ETag / If-Match, app/core/concurrency.py)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """One message for one subscription; its id is the stable `webhook-id`."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_delivery_subscription", "subscription_id", "created_at"),
        # One alert's deliveries to one subscription: they go out in order.
        sa.Index("ix_webhook_delivery_stream", "alert_id", "subscription_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", ondelete="CASCADE")
    event_id: uuid.UUID | None = Field(default=None, foreign_key="event.id", ondelete="SET NULL")
    event_type: EventType = Field(sa_type=EnumText(EventType, 40))
    alert_id: uuid.UUID | None = None
    # The alert's version when the event was written: the order of one alert's messages
    # to one subscription, whatever the clocks of the processes that wrote them.
    alert_version: int | None = None
    url_epoch: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    replayed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The envelope only (`type`, `timestamp`, event data): the alert itself is rendered
    # when the message is sent.
    payload: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    status: DeliveryStatus = Field(
        default=DeliveryStatus.pending, sa_type=EnumText(DeliveryStatus, 20)
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=100)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    last_latency_ms: float | None = None
    last_response: str | None = Field(default=None, max_length=2048)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryAttempt(SQLModel, table=True):
    """One POST of a delivery: when, how long, what came back."""

    __tablename__ = "webhook_attempt"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    delivery_id: uuid.UUID = Field(
        foreign_key="webhook_delivery.id", index=True, ondelete="CASCADE"
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = Field(default=None, max_length=500)
    response_excerpt: str | None = Field(default=None, max_length=2048)
    worker: str | None = Field(default=None, max_length=100)
