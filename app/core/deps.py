"""Process-wide resources on the app's state, as typed dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.security import PasswordHashing


# Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
# hand-off on every request for an attribute look-up.
async def get_hashing(request: Request) -> PasswordHashing:
    """The app's password hasher (set by `create_app`, shared with the auth package)."""
    return request.app.state.hashing


HashingDep = Annotated[PasswordHashing, Depends(get_hashing)]
