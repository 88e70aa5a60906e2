"""The TAXII 2.1 collections, always through app/sharing's visibility rule.

Every query starts from `visible.visible_alerts(principal)` for the *current* caller;
a TAXII `next` cursor only carries a position (date added, alert id, object index), so a
cursor taken from another session can never widen what a page shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import read as alert_read
from app.alerts import service as alerts
from app.alerts import visible
from app.alerts.models import Alert, AlertItem
from app.audit import service as audit
from app.authz import rights, rules
from app.authz.principal import Principal, Scope
from app.core.errors import AppError, FieldError, NotFound
from app.core.pagination import JsonCursor, Keyset
from app.core.types import UTCDateTime
from app.interop import stix, stix_import
from app.interop.models import TaxiiStatus
from app.sharing import markings
from app.sharing.handling import AlertKind, AlertStatus


class BadTaxiiRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad request"

    @classmethod
    def on(cls, field_: str, message: str) -> BadTaxiiRequest:
        """An error naming one query parameter."""
        return cls(f"{field_}: {message}", errors=[FieldError(field=field_, message=message)])


# --- collections ------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    id: uuid.UUID
    title: str
    description: str
    kind: AlertKind | None


def _collection(key: str, title: str, kind: AlertKind | None) -> Collection:
    what = f"{kind.value.replace('_', ' ')} alerts" if kind else "every kind of alert"
    return Collection(
        uuid.uuid5(stix.NAMESPACE, f"collection:{key}"),
        title,
        f"Tracewire {what} your agency may see, as STIX 2.1 reports.",
        kind,
    )


COLLECTIONS = [
    _collection("all", "All alerts", None),
    _collection("seized_weapon", "Seized weapons", AlertKind.seized_weapon),
    _collection("trace_request", "Trace requests", AlertKind.trace_request),
    _collection(
        "suspicious_procurement", "Suspicious procurement", AlertKind.suspicious_procurement
    ),
]
_BY_ID = {c.id: c for c in COLLECTIONS}


def get_collection(collection_id: str) -> Collection:
    """A collection by id; 404 for anything else."""
    try:
        found = _BY_ID.get(uuid.UUID(collection_id))
    except ValueError:
        found = None
    if found is None:
        raise NotFound("No such collection.")
    return found


def collection_resource(collection: Collection, principal: Principal) -> dict[str, Any]:
    """The TAXII collection resource, with the caller's real rights."""
    return {
        "id": str(collection.id),
        "title": collection.title,
        "description": collection.description,
        "can_read": principal.has_scope(Scope.alerts_read),
        "can_write": principal.has_scope(Scope.alerts_write),
        "media_types": [stix.STIX_MEDIA_TYPE],
    }


# --- the object scan --------------------------------------------------------------------

# When an object was added: when its alert last changed, or when its embargo ended if that
# is later (an embargoed alert reaches its readers then, and pollers must not miss it).
DATE_ADDED = sa.type_coerce(
    sa.case(
        (col(Alert.embargo_until) > col(Alert.updated_at), col(Alert.embargo_until)),
        else_=col(Alert.updated_at),
    ),
    UTCDateTime(),
)
_SKIP_ALL = 1 << 30


@dataclass
class Match:
    """The `match[…]` filters and `added_after` of a TAXII request."""

    ids: list[str] | None = None
    types: list[str] | None = None
    versions: list[str] = field(default_factory=lambda: ["last"])
    spec_versions: list[str] | None = None
    added_after: datetime | None = None

    def __post_init__(self) -> None:
        self._times: set[datetime] = set()
        for value in self.versions:
            if value not in ("first", "last", "all"):
                try:
                    self._times.add(stix.parse_timestamp(value))
                except ValueError as exc:
                    raise BadTaxiiRequest.on("match[version]", f"not a timestamp: {value}") from exc

    def accepts(self, obj: dict[str, Any]) -> bool:
        """Whether one STIX object passes every filter."""
        if self.ids is not None and obj["id"] not in self.ids:
            return False
        if self.types is not None and obj["type"] not in self.types:
            return False
        if self.spec_versions is not None and stix.SPEC_VERSION not in self.spec_versions:
            return False
        named = {"first", "last", "all"} & set(self.versions)
        # Tracewire keeps the current version of each object: it is first, last and all.
        return bool(named) or stix.parse_timestamp(obj["modified"]) in self._times


@dataclass(frozen=True)
class Entry:
    obj: dict[str, Any]
    date_added: datetime
    alert_id: uuid.UUID
    position: int


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    more: bool
    next: str | None


# A stateless `next`: the position just past an entry (date added, alert id, object index),
# 400 when it is not one of ours. JSON's default separators, as the cursors issued so far.
NEXT_CURSOR = JsonCursor(
    (datetime, uuid.UUID, int),
    lambda: BadTaxiiRequest.on("next", "not a cursor this server issued"),
    separators=(", ", ": "),
)
# The scan's order: alerts ascending by date added, then id (an expression in the key,
# so the cursor's values are typed).
SCAN_ORDER = Keyset((DATE_ADDED, col(Alert.id)), bind_types=(UTCDateTime(), sa.Uuid()))


def _next_of(entry: Entry) -> str:
    return NEXT_CURSOR.encode((entry.date_added, entry.alert_id, entry.position))


def released_alerts(session: AsyncSession, principal: Principal, collection: Collection) -> Any:
    """Visible, released (published or withdrawn) alerts of the collection, and date added."""
    dialect = session.get_bind().dialect.name
    query = visible.visible_alert_rows(principal, DATE_ADDED, dialect=dialect).where(
        col(Alert.status) != AlertStatus.draft
    )
    if collection.kind is not None:
        query = query.where(col(Alert.kind) == collection.kind)
    return query


def _matched(base: Any, match: Match) -> Any:
    """The collection's rows narrowed by `added_after` and the object ids asked for."""
    if match.added_after is not None:
        base = base.where(DATE_ADDED > match.added_after)
    if match.ids is not None:
        wanted = stix.stix_uuids(match.ids)
        base = base.where(
            sa.or_(
                col(Alert.id).in_(wanted),
                sa.exists().where(
                    col(AlertItem.alert_id) == Alert.id, col(AlertItem.id).in_(wanted)
                ),
            )
        )
    return base


async def scan(
    session: AsyncSession,
    principal: Principal,
    collection: Collection,
    match: Match,
    *,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """One page of the collection's STIX objects, ascending by date added, then position."""
    rules.require_alert_reader(principal)
    after = NEXT_CURSOR.decode(cursor) if cursor else None
    base = _matched(released_alerts(session, principal, collection), match)
    batch = min(limit + 1, 200)
    out: list[Entry] = []
    while True:
        query = base
        if after is not None:
            query = SCAN_ORDER.after(query, after[:2], inclusive=True)
        query = SCAN_ORDER.ordered(query).limit(batch)
        rows = (await session.exec(query)).all()
        reads = await alert_read.read_models(session, principal, [row[0] for row in rows])
        for (alert, added), read in zip(rows, reads, strict=True):
            for position, obj in enumerate(stix.alert_objects(read)):
                if after and alert.id == after[1] and position <= after[2]:
                    continue
                if not match.accepts(obj):
                    continue
                if len(out) == limit:
                    return Page(out, True, _next_of(out[-1]))
                out.append(Entry(obj, added, alert.id, position))
        if len(rows) < batch:
            return Page(out, False, None)
        last, last_added = rows[-1]
        after = (last_added, last.id, _SKIP_ALL)


async def read_objects(
    session: AsyncSession,
    principal: Principal,
    collection: Collection,
    match: Match,
    *,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """`GET objects` (and one object): a page of objects, its read audited."""
    page = await scan(session, principal, collection, match, limit=limit, cursor=cursor)
    alert_ids = list(dict.fromkeys(e.alert_id for e in page.entries))
    await audit.record_reads(session, principal, alert_ids, "taxii.objects")
    return page


async def read_one(
    session: AsyncSession,
    principal: Principal,
    collection: Collection,
    match: Match,
    *,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """`GET objects/{id}`: like `read_objects`, but 404 when nothing visible has that id."""
    page = await read_objects(session, principal, collection, match, limit=limit, cursor=cursor)
    if not page.entries and cursor is None:
        raise NotFound("No such object in this collection.")
    return page


async def versions(
    session: AsyncSession, principal: Principal, collection: Collection, match: Match
) -> Page:
    """`GET objects/{id}/versions`: the versions of one object; 404 when not visible."""
    page = await scan(session, principal, collection, match, limit=1000)
    if not page.entries:
        raise NotFound("No such object in this collection.")
    return page


# --- adding objects ---------------------------------------------------------------------


def _envelope_objects(envelope: object) -> list[dict[str, Any]]:
    objects = envelope.get("objects") if isinstance(envelope, dict) else None
    if not isinstance(objects, list) or not objects:
        raise BadTaxiiRequest.on("body.objects", "a TAXII envelope with a non-empty `objects`")
    for index, obj in enumerate(objects):
        if not (
            isinstance(obj, dict)
            and isinstance(obj.get("type"), str)
            and isinstance(obj.get("id"), str)
        ):
            raise BadTaxiiRequest.on(f"body.objects.{index}", "a STIX object with `type` and `id`")
    return objects


def _outcome(obj: dict[str, Any], message: str) -> dict[str, Any]:
    version = obj.get("modified") if isinstance(obj.get("modified"), str) else None
    return {"id": obj["id"], "message": message} | ({"version": version} if version else {})


async def add_objects(
    session: AsyncSession, principal: Principal, collection: Collection, envelope: object
) -> TaxiiStatus:
    """Import the envelope's reports as published alerts, each kept at its TLP marking.

    The audience is the agency's default (app/sharing/markings); a report whose marking
    cannot be honoured is refused in the status resource, never stored wider.
    """
    rules.require_alert_author(principal)
    objects = _envelope_objects(envelope)
    index = {obj["id"]: obj for obj in objects}
    successes: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    used: set[str] = set()
    for report in (o for o in objects if o["type"] == "report"):
        try:
            data = stix_import.alert_create(report, index, only_kind=collection.kind)
            tokens = stix_import.marking_tokens(report, index)
            async with audit.savepoint(session):
                handling = await markings.handling_for_import(
                    session,
                    principal,
                    tokens,
                    kind=AlertKind(data.kind),
                    addressed_to=getattr(data.details, "addressed_to", None),
                    field="object_marking_refs",
                )
                data = data.model_copy(update={"handling": handling})
                alert = await alerts.create_alert(session, principal, data)
        except stix_import.NotImportable as exc:
            failures.append(_outcome(report, str(exc)))
            continue
        except AppError as exc:
            details = "; ".join(f"{e.field}: {e.message}" for e in exc.field_errors or [])
            failures.append(_outcome(report, f"{exc.detail or exc.title} {details}".strip()))
            continue
        successes.append(_outcome(report, f"stored as alert {alert.id}"))
        used.update(r for r in stix_import.as_list(report.get("object_refs")) if isinstance(r, str))
    for obj in (o for o in objects if o["type"] != "report"):
        if obj["id"] in used:
            successes.append(_outcome(obj, "stored with its report"))
        else:
            failures.append(
                _outcome(obj, "not stored: only reports, and the objects they refer to, are taken")
            )
    status = TaxiiStatus(
        agency_id=principal.agency_id,
        created_by=principal.id,
        collection_id=collection.id,
        total_count=len(objects),
        success_count=len(successes),
        failure_count=len(failures),
        successes=successes,
        failures=failures,
    )
    session.add(status)
    await session.flush()
    await audit.record(
        session,
        principal,
        "taxii.add_objects",
        object_type="taxii_status",
        object_id=status.id,
        details={"total": status.total_count, "succeeded": status.success_count},
    )
    return status


async def get_status(session: AsyncSession, principal: Principal, status_id: str) -> TaxiiStatus:
    """A status resource of the caller's agency; 404 for any other."""
    try:
        key = uuid.UUID(status_id)
    except ValueError:
        key = None
    row = await session.get(TaxiiStatus, key) if key else None
    if row is None or not rights.owns(principal, row.agency_id):
        raise NotFound("No such status resource.")
    return row


def status_resource(row: TaxiiStatus) -> dict[str, Any]:
    """The TAXII status resource."""
    return {
        "id": str(row.id),
        "status": row.status,
        "request_timestamp": stix.precise_timestamp(row.request_timestamp),
        "total_count": row.total_count,
        "success_count": row.success_count,
        "failure_count": row.failure_count,
        "pending_count": row.pending_count,
        "successes": row.successes,
        "failures": row.failures,
        "pendings": [],
    }
