"""What an alert's publication, change and withdrawal set off in the packages above alerts.

Alerts sit below the trace workflow, cross-matching and the webhooks, so they never
import them: each registers its hooks here when a process starts (`app.wiring.install()`,
called by `create_app()`, `tracewire worker` and the CLI commands that write), as the
webhooks subscribe to app/events. A hook runs in the caller's transaction, never commits,
and may refuse (an HTTP error) to undo the whole change.

Fail closed: publishing, changing the items of a published alert or withdrawing in a
process where a hook is missing raises `NotWired` before anything is written; otherwise
such a process would commit alerts whose workflow never started, whose serials were
never matched, or whose workflow stays open after the alert was withdrawn.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.models import Alert
from app.authz.principal import Principal

# Ends the workflow of an alert being withdrawn (`finish(session, principal, now)`), once
# the alert is; given by `TraceHooks.lock_for_withdrawal`.
FinishWithdrawal = Callable[[AsyncSession, Principal, datetime], Awaitable[None]]


@dataclass(frozen=True)
class TraceHooks:
    """The trace workflow of trace-request alerts (registered by app/traces)."""

    # Start the workflow of a trace request being published.
    start: Callable[[AsyncSession, Principal, Alert], Awaitable[object]]
    # Lock the workflow of an alert being withdrawn (its alert row is locked already:
    # the alert first, then its workflow) and refuse (409) when withdrawal is not a step
    # from its state; None for an alert without a workflow.
    lock_for_withdrawal: Callable[[AsyncSession, Alert], Awaitable[FinishWithdrawal | None]]


# Match released alerts' serialised items against other agencies' (app/hits).
Matcher = Callable[[AsyncSession, Sequence[Alert]], Awaitable[object]]
# How many of an agency's live webhook subscriptions would receive this alert's
# publication (the audience preview; app/webhooks).
ReceivingCounter = Callable[[AsyncSession, uuid.UUID, Alert], Awaitable[int]]


class NotWired(RuntimeError):
    """A publication or withdrawal in a process where a hook of it was never registered."""


@dataclass
class _Hooks:
    traces: TraceHooks | None = None
    match: Matcher | None = None
    count_receiving: ReceivingCounter | None = None


# Process-wide, like the event log's subscribers; registering again replaces.
_hooks = _Hooks()


def register_traces(hooks: TraceHooks) -> None:
    """Install the trace workflow's hooks (app/traces)."""
    _hooks.traces = hooks


def register_matching(match: Matcher) -> None:
    """Install the cross-matching of published items (app/hits)."""
    _hooks.match = match


def register_receiving_counter(count: ReceivingCounter) -> None:
    """Install the count of subscriptions an audience preview shows (app/webhooks)."""
    _hooks.count_receiving = count


def registered() -> list[str]:
    """The names of the hooks registered in this process."""
    return [name for name, hook in vars(_hooks).items() if hook is not None]


def require() -> None:
    """Refuse (`NotWired`) a publication, change or withdrawal that a hook would be missed by.

    Called before anything is written, whatever the alert's kind: a process missing one
    is miswired, and finding out on the first alert beats finding out on a trace request.
    """
    missing = [name for name in ("traces", "match") if getattr(_hooks, name) is None]
    if missing:
        raise NotWired(f"alert lifecycle hooks not registered: {', '.join(missing)}")


async def start_workflow(session: AsyncSession, principal: Principal, alert: Alert) -> None:
    """A trace request is being published: its workflow starts."""
    await _traces().start(session, principal, alert)


async def match(session: AsyncSession, alerts: Sequence[Alert]) -> None:
    """Alerts were published or their items replaced: match their serialised items."""
    await _matcher()(session, alerts)


async def lock_for_withdrawal(session: AsyncSession, alert: Alert) -> FinishWithdrawal | None:
    """Lock (and check) a trace request's workflow before its locked alert is withdrawn."""
    return await _traces().lock_for_withdrawal(session, alert)


async def count_receiving(session: AsyncSession, agency_id: uuid.UUID, alert: Alert) -> int:
    """How many of the agency's subscriptions would receive `alert`'s publication."""
    if _hooks.count_receiving is None:
        raise NotWired("alert lifecycle hook not registered: count_receiving")
    return await _hooks.count_receiving(session, agency_id, alert)


def _traces() -> TraceHooks:
    if _hooks.traces is None:
        raise NotWired("alert lifecycle hook not registered: traces")
    return _hooks.traces


def _matcher() -> Matcher:
    if _hooks.match is None:
        raise NotWired("alert lifecycle hook not registered: match")
    return _hooks.match
