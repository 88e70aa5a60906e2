"""The form an alert takes for a reader: content, reference or tombstone (app/sharing/render.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.agencies.models import ApiClient, User
from app.alerts.models import Alert
from app.audit.models import AuditRecord
from app.authz.principal import Scope
from app.sharing.render import (
    Form,
    delivery_form,
    history_shown,
    read_form,
    render,
    subscriber,
)

OWN, OTHER = uuid.uuid4(), uuid.uuid4()


def _alert(status: str = "published", tlp: str = "green") -> Alert:
    return Alert(
        kind="seized_weapon",
        originator_agency_id=OWN,
        created_by=uuid.uuid4(),
        created_by_kind="user",
        status=status,
        title="Secret title",
        summary="Secret summary",
        country="KE",
        tlp=tlp,
        audience="community",
        withdrawn_at=datetime(2026, 12, 1, tzinfo=UTC) if status == "withdrawn" else None,
        withdrawal_reason="In error" if status == "withdrawn" else None,
    )


def _user(agency: uuid.UUID, **fields: object) -> User:
    return User(agency_id=agency, email="u@x.example", full_name="U", role="reader",
                password_hash="-", **fields)  # fmt: skip


def _client(agency: uuid.UUID, scopes: str, **fields: object) -> ApiClient:
    return ApiClient(agency_id=agency, name="c", scopes=scopes, secret_hash="-",
                     secret_hint="-", **fields)  # fmt: skip


NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "tlp", "manager", "form"),
    [
        ("published", "green", _user(OTHER), Form.content),
        ("published", "amber+strict", _user(OTHER), Form.content),
        ("published", "red", _user(OTHER), Form.reference),  # red: always a reference
        ("published", "red", _client(OTHER, "alerts:read webhooks:manage"), Form.reference),
        ("published", "green", _client(OTHER, "webhooks:manage"), Form.reference),
        ("published", "green", _client(OTHER, "alerts:read webhooks:manage"), Form.content),
        ("published", "green", _client(OTHER, "alerts:read", revoked_at=NOW), Form.reference),
        ("published", "green", _user(OTHER, is_active=False), Form.reference),
        ("published", "green", _user(OTHER, deleted_at=NOW), Form.reference),
        ("published", "green", _user(OWN), Form.reference),  # a manager of another agency
        ("published", "green", None, Form.reference),  # nobody on record
        ("withdrawn", "green", _user(OTHER), Form.tombstone),
        ("withdrawn", "red", _user(OTHER), Form.tombstone),
    ],
)
def test_delivery_form(status, tlp, manager, form):
    assert delivery_form(_alert(status, tlp), subscriber(OTHER, manager)) is form


def test_the_originators_own_endpoint_gets_a_tombstone_once_withdrawn():
    alert = _alert("withdrawn")
    reader = subscriber(OWN, _user(OWN))
    assert read_form(alert, reader) is Form.content  # the API still shows it its content
    assert delivery_form(alert, reader) is Form.tombstone


@pytest.mark.parametrize("form", list(Form))
def test_only_content_carries_content(form):
    body = render(_alert("withdrawn" if form is Form.tombstone else "published"), form, "")
    carries = "Secret title" in str(body) or "Secret summary" in str(body)
    assert carries is (form is Form.content)
    assert body["url"].endswith(f"/api/v1/alerts/{body['id']}")
    if form is Form.tombstone:
        assert body["tombstone"] is True and body["withdrawal_reason"] == "In error"


def test_unknown_scopes_of_a_client_grant_nothing():
    reader = subscriber(OTHER, _client(OTHER, "alerts:read something:else"))
    assert reader.scopes == frozenset({Scope.alerts_read})


def _record(action: str, agency: uuid.UUID, at: datetime, **details: object) -> AuditRecord:
    return AuditRecord(
        action=action,
        agency_id=agency,
        actor_name=f"person-of-{agency.hex[:4]}@x.example",
        object_type="alert",
        at=at,
        details=details,
    )


def test_history_names_people_only_to_their_own_agency_and_hides_drafts_from_others():
    alert = _alert()
    alert.published_at = datetime(2026, 12, 2, tzinfo=UTC)
    drafted = _record(
        "alert.update", OWN, datetime(2026, 12, 1, tzinfo=UTC), version=2, fields=["handling"]
    )
    published = _record("alert.publish", OWN, alert.published_at, version=3, status="published")
    # A forwarded trace request's copy is created by the forwarding agency.
    copied = _record("alert.create", OTHER, alert.published_at, status="published")
    records = [copied, published, drafted]
    own = subscriber(OWN, _user(OWN))
    mine = history_shown(alert, own, records)
    assert [(h.action, h.agency_id, h.actor_name) for h in mine] == [
        ("alert.create", OTHER, None),
        ("alert.publish", OWN, published.actor_name),
        ("alert.update", OWN, drafted.actor_name),
    ]
    assert mine[2].details["fields"] == ["handling"]
    theirs = history_shown(alert, subscriber(OTHER, _user(OTHER)), records)
    assert [(h.action, h.actor_name, h.details) for h in theirs] == [
        ("alert.create", None, {"status": "published"}),
        ("alert.publish", None, {"version": 3, "status": "published"}),
    ]
