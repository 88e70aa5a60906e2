"""STIX 2.1 bundles: one alert (`GET /alerts/{id}/stix`) or all an agency may see (CLI).

Both read through app/sharing (app/alerts' query and read models, and
`service.released_alerts`) and are audited as exports.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.alerts import read as alert_read
from app.alerts.models import Alert
from app.alerts.schemas import AlertRead
from app.audit import service as audit
from app.authz import rules
from app.authz.principal import ActorKind, Principal, Scope
from app.core.errors import NotFound
from app.interop import service, stix
from app.sharing.handling import Tlp


async def _bundle(session: AsyncSession, reads: Sequence[AlertRead]) -> dict[str, Any]:
    agency_ids = {r.originator_agency_id for r in reads} | {
        r.addressed_to_agency_id for r in reads if r.addressed_to_agency_id
    }
    agencies = (
        (await session.exec(select(Agency).where(col(Agency.id).in_(agency_ids)))).all()
        if agency_ids
        else []
    )
    identities = [
        stix.agency_identity(a.id, a.name, a.country, a.type, a.created_at)
        for a in sorted(agencies, key=lambda a: a.name)
    ]
    # A reference (TLP:RED without the scope to read it) still carries its marking.
    tlps = {Tlp(tlp) for r in reads if (tlp := r.handling.tlp if r.handling else r.tlp)}
    objects = [obj for read in reads for obj in stix.alert_objects(read)]
    return stix.bundle([*stix.shared_objects(tlps), *identities, *objects])


async def export_alert(session: AsyncSession, principal: Principal, alert: Alert) -> dict[str, Any]:
    """The STIX bundle of one visible alert (its tombstone if withdrawn from you)."""
    reads = await alert_read.read_models(session, principal, [alert])
    await audit.record_reads(session, principal, [alert.id], "alert.export_stix")
    return await _bundle(session, reads)


async def export_all(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    """The STIX bundle of every released alert the principal's agency may see."""
    rules.require_alert_reader(principal)
    collection = service.COLLECTIONS[0]
    rows = (
        await session.exec(
            service.SCAN_ORDER.ordered(service.released_alerts(session, principal, collection))
        )
    ).all()
    alerts_seen = [row[0] for row in rows]
    reads: list[AlertRead] = []
    for start in range(0, len(alerts_seen), 500):
        reads += await alert_read.read_models(session, principal, alerts_seen[start : start + 500])
    await audit.record(
        session,
        principal,
        "alert.export_stix",
        object_type="agency",
        object_id=principal.agency_id,
        details={"alert_ids": [str(a.id) for a in alerts_seen]},
    )
    return await _bundle(session, reads)


CLI_EXPORTER_ID = uuid.uuid5(stix.NAMESPACE, "cli:export-stix")


async def export_for_agency(session: AsyncSession, agency_id: uuid.UUID) -> dict[str, Any]:
    """`tracewire export-stix`: everything an agency may see, read as that agency."""
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"No agency {agency_id}.")
    exporter = Principal(
        kind=ActorKind.client,
        id=CLI_EXPORTER_ID,
        agency_id=agency.id,
        role=None,
        scopes=frozenset({Scope.alerts_read}),
        name="tracewire export-stix (command line)",
        token_id="cli",  # noqa: S106 - not a secret: no token at all
    )
    return await export_all(session, exporter)
