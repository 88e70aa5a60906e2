"""A trace request's own due dates: validated with the alert, read by the trace workflow.

They are fields of the request's `details`, so checking them is the alert kind's
validation (here, below the workflow), not a step of app/traces.
"""

from __future__ import annotations

from datetime import datetime

from app.core.errors import InvalidInput
from app.core.types import parse_utc


def requested_due(details: dict[str, object], name: str) -> datetime | None:
    """A requested deadline of stored details, in UTC; 422 naming it when unreadable (a
    draft stored before deadlines were bounded may hold one UTC cannot)."""
    value = details.get(name)
    if not value:
        return None
    try:
        return parse_utc(str(value))
    except ValueError as exc:
        raise InvalidInput.on(f"details.{name}", str(exc)) from exc


def check_requested_deadlines(details: dict[str, object], now: datetime) -> None:
    """A request may set its own due dates, but never in the past (422 naming the field)."""
    ack, response = requested_due(details, "ack_due"), requested_due(details, "response_due")
    for name, value in (("ack_due", ack), ("response_due", response)):
        if value and value < now:
            raise InvalidInput.on(f"details.{name}", "must not be earlier than now")
    if ack and response and response < ack:
        raise InvalidInput.on("details.response_due", "must not be earlier than ack_due")
