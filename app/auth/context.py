"""What the auth modules need from the app, and the errors they answer with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import AppError
from app.core.security import PasswordHashing
from app.core.tokens import KeyRing
from app.core.types import utcnow


@dataclass(frozen=True)
class AuthContext:
    """What the auth package needs from the app: settings, keys and password hashing."""

    settings: Settings
    keys: KeyRing
    hashing: PasswordHashing
    clock: Callable[[], datetime] = utcnow  # replaced in tests to control time


class OAuthError(AppError):
    """An RFC 6749 §5.2 error, rendered as a problem with the OAuth2 `error` code."""

    status, slug, title = 400, "oauth-error", "Token request refused"

    def __init__(
        self, error: str, description: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="tracewire"'} if status == 401 else {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        super().__init__(
            description, headers=headers, extra={"error": error, "error_description": description}
        )
        self.status = status


class ErrorAfterCommit(Exception):
    """A refusal whose records must outlive it: the failed login's audit record and
    back-off count, or the revoked token family.

    Services raise it; `kept_refusal` is the one place that commits and answers it.
    """

    def __init__(self, error: AppError) -> None:
        super().__init__(str(error))
        self.error = error


@asynccontextmanager
async def kept_refusal(
    session: AsyncSession, *, headers: Mapping[str, str] | None = None
) -> AsyncIterator[None]:
    """Turn an `ErrorAfterCommit` inside the block into its error, after committing.

    The request's transaction rolls back on any error, so what the refusal recorded is
    committed here first; `headers` are added to the error's answer.
    """
    try:
        yield
    except ErrorAfterCommit as exc:
        await session.commit()
        exc.error.headers.update(headers or {})
        raise exc.error from None
