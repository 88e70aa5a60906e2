"""Every table, imported in one place so the metadata is complete (Alembic, tests)."""

from sqlmodel import SQLModel

from app.agencies.models import Agency, ApiClient, User
from app.auth.models import AuthSession, RefreshToken, RevokedToken

metadata = SQLModel.metadata

__all__ = [
    "Agency",
    "ApiClient",
    "AuthSession",
    "RefreshToken",
    "RevokedToken",
    "User",
    "metadata",
]
