"""The workflow and the outbox use the settings the app was created with, not the environment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from app.authz.principal import Role
from app.core.config import Settings, get_settings
from tests.conftest import settings_for
from tests.factories import make_actor, make_agency, post_alert, seizure_body, trace_body


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Deadlines other than the defaults (5/30 and 1/3 days), given only to `create_app`."""
    return settings_for(
        db_url,
        trace_routine_ack_days=7,
        trace_routine_response_days=45,
        trace_urgent_ack_days=2,
        trace_urgent_response_days=6,
    )


@pytest.fixture
def unreadable_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """TRACEWIRE_* variables that are no valid settings: reading them raises."""
    monkeypatch.setenv("TRACEWIRE_PORT", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
async def parties(client, db, app):
    hashing = app.state.auth.hashing
    ke, de = [await make_agency(db, country=c) for c in ("KE", "DE")]
    return {
        "requester": await make_actor(client, db, hashing, ke, Role.focal_point),
        "addressee": await make_actor(client, db, hashing, de, Role.focal_point),
    }


def _days(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() / 86400


async def test_default_deadlines_come_from_the_apps_settings(client, parties):
    routine = trace_body(parties["addressee"].agency)
    urgent = trace_body(parties["addressee"].agency)
    urgent["details"] |= {
        "priority": "urgent",
        "priority_justification": "Armed group still active.",
    }
    want = {"routine": (7, 45), "urgent": (2, 6)}
    for priority, body in (("routine", routine), ("urgent", urgent)):
        trace_id = (await post_alert(client, parties["requester"], body))["id"]
        answer = await client.get(
            f"/api/v1/trace-requests/{trace_id}", headers=parties["requester"].headers
        )
        t = answer.json()
        got = (
            round(_days(t["ack_due"], t["submitted_at"])),
            round(_days(t["response_due"], t["submitted_at"])),
        )
        assert got == want[priority], priority


async def test_events_fan_out_without_reading_the_environment(
    client, parties, unreadable_environment
):
    # Publishing records an event, which the outbox fans out in the same transaction.
    alert = await post_alert(client, parties["requester"], seizure_body())
    assert alert["status"] == "published"
