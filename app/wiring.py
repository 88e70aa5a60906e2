"""Every registration a process needs before it may write, installed in one place.

The lower packages never import the higher ones: the event log does not know the
webhooks, nor the alerts the trace workflow, the matching or the webhooks. Each
registers here instead, so `create_app()`, `tracewire worker`, the CLI commands that
write and the tests wire a process identically. Both registries fail closed (an event
with no subscriber, a publication or withdrawal with a hook missing is refused), so a
process that skipped `install()` writes nothing rather than something half done.
"""

from __future__ import annotations

from app.alerts import lifecycle
from app.hits import matching
from app.traces import workflow
from app.webhooks import outbox


def install() -> None:
    """Register the webhooks with the event log and the alerts' lifecycle hooks (idempotent)."""
    outbox.subscribe()
    lifecycle.register_traces(
        lifecycle.TraceHooks(
            start=workflow.submit, lock_for_withdrawal=workflow.lock_for_withdrawal
        )
    )
    lifecycle.register_matching(matching.match_alerts)
    lifecycle.register_receiving_counter(outbox.count_receiving)
