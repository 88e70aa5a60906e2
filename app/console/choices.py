"""The alert kinds and value lists the console's alert pages offer, all from the API's types."""

from __future__ import annotations

from typing import Any, get_args

from app.alerts.schemas import (
    AlertCreate,
    AlertCreateBody,
    IllicitBasis,
    ItemCategory,
    PartyRole,
    Priority,
    ProcurementState,
    SerialStatus,
    Unit,
)
from app.sharing.handling import AlertKind, AlertStatus, Audience, Tlp


def _create_models() -> dict[str, type[AlertCreateBody]]:
    """The API's create model of each kind, read from its `AlertCreate` union."""
    union = get_args(AlertCreate)[0]
    out: dict[str, type[AlertCreateBody]] = {}
    for model in get_args(union):
        (kind,) = get_args(model.model_fields["kind"].annotation)
        out[AlertKind(kind).value] = model
    return out


CREATE_MODELS: dict[str, type[AlertCreateBody]] = _create_models()
# "Seized weapon", "Trace request", "Suspicious procurement": the kinds the API knows.
KIND_NAMES = {k.value: k.value.replace("_", " ").capitalize() for k in AlertKind}
CHOICES: dict[str, Any] = {
    "kinds": KIND_NAMES,
    "statuses": [s.value for s in AlertStatus],
    "tlps": [t.value for t in Tlp],
    "audiences": [a.value for a in Audience],
    "categories": [c.value for c in ItemCategory],
    "serial_statuses": [s.value for s in SerialStatus],
    "units": [u.value for u in Unit],
    "illicit_bases": [b.value for b in IllicitBasis],
    "priorities": [p.value for p in Priority],
    "procurement_states": [s.value for s in ProcurementState],
    "party_roles": [r.value for r in PartyRole],
}


def form_kind(raw: object) -> str:
    """The kind a form names, or `seized_weapon` when it names none the API takes."""
    kind = str(raw or "")
    return kind if kind in CREATE_MODELS else AlertKind.seized_weapon.value
