"""Every table, imported in one place so the metadata is complete (Alembic, tests)."""

from sqlmodel import SQLModel

from app.agencies.models import Agency, ApiClient, SetPasswordToken, User
from app.alerts.models import Alert, AlertItem, AlertTag
from app.audit.models import AuditHead, AuditRecord
from app.auth.models import AuthSession, LoginThrottle, RefreshToken, RevokedToken
from app.console.models import ConsoleSession
from app.core.idempotency import IdempotencyRecord
from app.events.models import Event
from app.hits.models import Hit, PendingMatch
from app.interop.models import TaxiiStatus
from app.sharing.models import (
    AlertRecipientAgency,
    AlertRecipientGroup,
    SharingGroup,
    SharingGroupMember,
    SharingPolicy,
)
from app.traces.models import TraceMessage, TraceRequest, TraceResponse, TraceTransition
from app.webhooks.models import Delivery, DeliveryAttempt, Subscription

metadata = SQLModel.metadata

__all__ = [
    "Agency",
    "Alert",
    "AlertItem",
    "AlertRecipientAgency",
    "AlertRecipientGroup",
    "AlertTag",
    "ApiClient",
    "AuditHead",
    "AuditRecord",
    "AuthSession",
    "ConsoleSession",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "Hit",
    "IdempotencyRecord",
    "LoginThrottle",
    "PendingMatch",
    "RefreshToken",
    "RevokedToken",
    "SetPasswordToken",
    "SharingGroup",
    "SharingGroupMember",
    "SharingPolicy",
    "Subscription",
    "TaxiiStatus",
    "TraceMessage",
    "TraceRequest",
    "TraceResponse",
    "TraceTransition",
    "User",
    "metadata",
]
