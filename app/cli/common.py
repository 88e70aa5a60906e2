"""What every `tracewire` command shares: the consoles and opening the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from app.core.config import ConfigurationError, Settings

if TYPE_CHECKING:
    from app.core.db import Database

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
AGENCY_HELP = "The agency: its id, its name, or its country code when it is the only one there."


async def run_migrations(settings: Settings) -> str | None:
    """Apply pending migrations; the revision the database is at, or ConfigurationError."""
    from app.core.db import create_engine

    engine = create_engine(settings)
    try:
        try:
            async with engine.connect():
                pass
        except (OSError, SQLAlchemyError) as exc:
            raise ConfigurationError([_unreachable(settings, exc)]) from None
        from app.core import migrate  # Alembic logs its plugins when imported

        await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


async def connected(settings: Settings) -> Database:
    """The database, once it has answered; ConfigurationError when it cannot be opened."""
    from app.core.db import Database

    db = Database(settings)
    try:
        await db.ping()
    except (OSError, SQLAlchemyError) as exc:
        await db.dispose()
        raise ConfigurationError([_unreachable(settings, exc)]) from None
    return db


def _unreachable(settings: Settings, exc: BaseException) -> str:
    """Why the database cannot be reached, without the URL's password."""
    from sqlalchemy.engine import make_url

    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    reason = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    password = make_url(settings.database_url.get_secret_value()).password
    if password:
        reason = reason.replace(str(password), "***")
    return f"TRACEWIRE_DATABASE_URL: cannot open the database ({reason.rstrip(': ')})"
