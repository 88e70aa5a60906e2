"""`POST /alerts:batch`: up to 500 alerts in one transaction, an answer or a problem each.

For national systems that sync their records: each alert is checked on its own exactly as
`POST /alerts` checks it, so a refused alert leaves nothing behind and the others are
kept; those that pass are written together, in the statements of one alert. The whole
batch commits together; a repeat with the same `Idempotency-Key` replays it, each alert
read again under the caller's rights now.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, SkipValidation, TypeAdapter, ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import query as alert_query
from app.alerts import read as alert_read
from app.alerts import service
from app.alerts.models import Alert
from app.alerts.rows import NewAlert
from app.alerts.schemas import AlertCreate, AlertRead
from app.audit import service as audit
from app.authz import rules
from app.authz.principal import Principal
from app.core import memo
from app.core.errors import (
    PROBLEM_BASE,
    AppError,
    Conflict,
    FieldError,
    InvalidInput,
    Problem,
)
from app.core.schemas import InputModel, OutputModel

MAX_BATCH = 500

RACED = "The alert conflicts with a concurrent or existing record; post it again."
UNSTORABLE = "A value of this alert cannot be stored as given (a character or a length)."

_ALERT = TypeAdapter(AlertCreate)


class BatchCreate(InputModel):
    """Alerts to post; each is checked on its own, so one bad alert refuses only itself."""

    # Validated one by one in `post_batch` (SkipValidation keeps the schema, not the check).
    alerts: Annotated[list[SkipValidation[AlertCreate]], Field(min_length=1, max_length=MAX_BATCH)]


class BatchProblem(Problem):
    """Why one alert was refused: the problem `POST /alerts` would have answered."""

    rule: str | None = Field(default=None, description="The sharing rule it breaks, if one.")


class BatchResult(OutputModel):
    """The answer for one alert of the batch, at its index: the alert, or why it was refused."""

    index: int
    status: int = Field(description="What `POST /alerts` would have answered: 201, 4xx.")
    alert: AlertRead | None = None
    problem: BatchProblem | None = None


class BatchAnswer(OutputModel):
    results: list[BatchResult]
    created: int
    refused: int


async def post_batch(
    session: AsyncSession, principal: Principal, alerts: Sequence[object]
) -> BatchAnswer:
    """Check every alert, then write those that pass together: their rows, events,
    deliveries and matching in the statements of one alert (`service.store_alerts`), in
    one savepoint. Should the database refuse that (a constraint or a value the checks
    let through), each alert is posted again in its own savepoint, as `POST /alerts`
    would post it, so that only the one at fault is refused. The answers in the order
    the alerts came."""
    rules.require_alert_author(principal)
    valid: dict[int, AlertCreate] = {}
    prepared: list[NewAlert] = []
    refused: dict[int, BatchProblem] = {}
    with memo.batch(session):  # the policy and the named agencies and groups looked up once
        for index, raw in enumerate(alerts):
            try:
                data = _ALERT.validate_python(raw)
                prepared.append(await service.prepare_alert(session, principal, data))
                valid[index] = data
            except ValidationError as exc:
                refused[index] = _invalid(index, exc)
            except AppError as exc:
                refused[index] = _problem(index, exc)
        if await _store_all(session, principal, prepared):
            created = dict(zip(valid, (new.alert for new in prepared), strict=True))
        else:
            created = {}
            for index, data in valid.items():
                outcome = await _post_one(session, principal, index, data)
                if isinstance(outcome, Alert):
                    created[index] = outcome
                else:
                    refused[index] = outcome
    reads = await alert_read.read_models(session, principal, list(created.values()))
    shown = dict(zip(created, reads, strict=True))
    return _answer(len(alerts), shown, refused)


async def _store_all(session: AsyncSession, principal: Principal, news: list[NewAlert]) -> bool:
    """The prepared alerts written together, or nothing (False) when the database or a
    step of their publication refused one of them."""
    if not news:
        return True
    try:
        async with audit.savepoint(session):
            await service.store_alerts(session, principal, news)
    except AppError:
        pass
    except DBAPIError as exc:
        if not (isinstance(exc, IntegrityError) or _refused_value(exc)):
            raise
    else:
        return True
    for new in news:  # rolled back: the objects stand for no row
        if new.alert in session:
            session.expunge(new.alert)
    return False


async def _post_one(
    session: AsyncSession, principal: Principal, index: int, data: AlertCreate
) -> Alert | BatchProblem:
    """One alert of the batch, in its own savepoint: posted, or why it was refused."""
    try:
        async with audit.savepoint(session):
            return await service.create_alert(session, principal, data)
    except AppError as exc:
        return _problem(index, exc)
    except IntegrityError:
        # A constraint caught a race the service's checks missed: this alert only.
        return _problem(index, Conflict(RACED))
    except DBAPIError as exc:
        # The database refused a value validation let through (PostgreSQL: a NUL
        # character, a derived key longer than its column): this alert only, never
        # a 500 that takes the whole batch down with it. Anything else still is one.
        if not _refused_value(exc):
            raise
        return _problem(index, InvalidInput(UNSTORABLE, errors=[_whole()]))


async def reread_batch(session: AsyncSession, principal: Principal, first: Any) -> BatchAnswer:
    """A replayed batch: its refusals as they were, its alerts as the caller may read them now."""
    shown: dict[int, AlertRead] = {}
    refused: dict[int, BatchProblem] = {}
    for result in first["results"]:
        index = int(result["index"])
        if result.get("problem") is not None:
            refused[index] = BatchProblem.model_validate(result["problem"])
            continue
        try:
            alert = await alert_query.read_alert(
                session, principal, uuid.UUID(result["alert"]["id"])
            )
        except AppError as exc:
            refused[index] = _problem(index, exc)
            continue
        shown[index] = (await alert_read.read_models(session, principal, [alert]))[0]
    return _answer(len(first["results"]), shown, refused)


def _answer(
    count: int, shown: dict[int, AlertRead], refused: dict[int, BatchProblem]
) -> BatchAnswer:
    results = [
        BatchResult(index=i, status=201, alert=shown[i])
        if i in shown
        else BatchResult(index=i, status=refused[i].status, problem=refused[i])
        for i in range(count)
    ]
    return BatchAnswer(results=results, created=len(shown), refused=len(refused))


def _at(index: int, error: FieldError) -> FieldError:
    """A field error of one alert, named where it is in the batch (`body.alerts.3.title`)."""
    if error.location not in (None, "body"):
        return error.located()
    path = error.field.removeprefix("body.").removeprefix("body")
    field = f"body.alerts.{index}" + (f".{path}" if path else "")
    return FieldError(field=field, message=error.message, type=error.type)


def _refused_value(exc: DBAPIError) -> bool:
    """Whether the database refused a value (SQLSTATE class 22, "data exception")."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(exc, DataError) or str(sqlstate or "").startswith("22")


def _whole() -> FieldError:
    return FieldError(field="body", message=UNSTORABLE, type="unstorable")


def _problem(index: int, exc: AppError) -> BatchProblem:
    rule = exc.extra.get("rule")
    return BatchProblem(
        type=PROBLEM_BASE + exc.slug,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        errors=[_at(index, e) for e in exc.field_errors] if exc.field_errors else None,
        rule=rule if isinstance(rule, str) else None,
    )


def _invalid(index: int, exc: ValidationError) -> BatchProblem:
    # Never the submitted value: it may be anything.
    errors = [
        FieldError(field=".".join(str(p) for p in e["loc"]), message=e["msg"], type=e["type"])
        for e in exc.errors()
    ]
    return _problem(index, InvalidInput("This alert is not valid.", errors=errors))
