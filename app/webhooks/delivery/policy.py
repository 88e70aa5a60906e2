"""What an attempt's outcome decides: the retry schedule, disabling a failing endpoint, records.

Pure functions of the outcome and the settings; the recorder applies what they return.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.audit import service as audit
from app.core.config import Settings
from app.webhooks.delivery.sender import RETRY_AFTER_CAP_SECONDS, Outcome
from app.webhooks.models import DeliveryStatus, Subscription


@dataclass(frozen=True)
class Decision:
    """What one attempt changes: the delivery's status and next try, the endpoint's failures."""

    status: DeliveryStatus
    consecutive_failures: int
    delivered_at: datetime | None = None
    # None: the delivery keeps the time it had (delivered or failed for good).
    next_attempt_at: datetime | None = None
    # Set: the subscription is to be disabled, for this reason.
    disable_reason: str | None = None


def next_delay(
    schedule: Sequence[float],
    attempts: int,
    outcome: Outcome,
    *,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds until the next try after `attempts` tries, or None when the schedule is spent."""
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * (1 + rand() * 0.2)  # jitter spreads a burst of retries
    if outcome.retry_after is not None and outcome.status_code in (429, 503):
        delay = max(delay, min(outcome.retry_after, RETRY_AFTER_CAP_SECONDS))
    return delay


def decide(
    outcome: Outcome,
    *,
    attempts: int,
    failures: int,
    settings: Settings,
    now: datetime,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """The decision after try number `attempts`, given the endpoint's `failures` in a row."""
    if outcome.ok:
        return Decision(DeliveryStatus.delivered, consecutive_failures=0, delivered_at=now)
    failures += 1
    gone = outcome.status_code == 410
    delay = next_delay(settings.webhook_retry_schedule, attempts, outcome, rand=rand)
    disable = gone or failures >= settings.webhook_disable_after_failures
    reason = ("410 Gone" if gone else f"{failures} failures") if disable else None
    if gone or delay is None:
        return Decision(DeliveryStatus.failed, consecutive_failures=failures, disable_reason=reason)
    return Decision(
        DeliveryStatus.pending,
        consecutive_failures=failures,
        next_attempt_at=now + timedelta(seconds=delay),
        disable_reason=reason,
    )


def audit_entry(delivery_id: uuid.UUID, sub: Subscription, outcome: Outcome) -> audit.Entry:
    """The audit trail's record of one attempt, in the subscribing agency's name."""
    return audit.Entry(
        "delivery.attempt",
        object_type="delivery",
        object_id=delivery_id,
        agency_id=sub.agency_id,
        outcome="success" if outcome.ok else "failure",
        details={"status_code": outcome.status_code, "error": outcome.error},
    )
