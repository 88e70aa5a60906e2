"""Every registration a process needs before it may write, installed in one place.

The lower packages never import the higher ones: the event log does not know the
webhooks, nor the alerts the trace workflow, the matching or the webhooks. Each
registers here instead, so `create_app()`, `tracewire worker`, the CLI commands that
write and the tests wire a process identically. Both registries fail closed (an event
with no subscriber, a publication or withdrawal with a hook missing is refused), so a
process that skipped `install()` writes nothing rather than something half done.
"""

from __future__ import annotations

from app.agencies import passwords
from app.alerts import lifecycle
from app.auth import credentials, passkeys
from app.hits import matching
from app.traces import workflow
from app.webhooks import outbox


def install() -> None:
    """Register the webhooks with the event log, the alerts' lifecycle hooks and the own
    password change (idempotent)."""
    outbox.subscribe()
    lifecycle.register_traces(
        lifecycle.TraceHooks(
            start=workflow.submit, lock_for_withdrawal=workflow.lock_for_withdrawal
        )
    )
    lifecycle.register_matching(matching.match_alerts)
    lifecycle.register_receiving_counter(outbox.count_receiving)
    # A user's own password change is checked under the auth package's back-off.
    passwords.register_own_password_change(credentials.change_own_password)
    # A password reset (a suspected compromise) also removes the user's passkeys.
    passwords.register_credential_reset(passkeys.forget_all)
