"""The token endpoint's form fields and answer; the console's login takes the same limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from pydantic import BaseModel, Field

UsernameField = Annotated[str | None, Form(max_length=254)]
PasswordField = Annotated[str | None, Form(max_length=1024)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int = Field(description="Lifetime of the access token, in seconds.")
    scope: str
    refresh_token: str | None = None
