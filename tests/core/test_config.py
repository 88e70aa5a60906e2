"""Settings: every secret a secret type, and no value in any validation error."""

from __future__ import annotations

import base64
import os
import secrets
import typing

import pytest
from pydantic import SecretStr

from app.core.config import ConfigurationError, JwtKey, Settings, get_settings

# Settings whose value is, or contains, something that grants access.
SECRET_SETTINGS = {"database_url", "jwt_secret", "audit_signing_key"}


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def test_every_secret_setting_is_a_secret_type():
    fields = Settings.model_fields
    assert {name for name, f in fields.items() if _is_secret(f.annotation)} == SECRET_SETTINGS
    assert _is_secret(JwtKey.model_fields["secret"].annotation)


def test_settings_never_show_their_secrets():
    password = secrets.token_urlsafe(24)
    jwt = secrets.token_urlsafe(48)
    seed = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(
        environment="test",
        database_url=f"postgresql+asyncpg://tracewire:{password}@db:5432/tracewire",
        jwt_secret=jwt,
        audit_signing_key=seed,
    )
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in (password, jwt, seed):
        assert secret not in shown
    assert settings.database_url.get_secret_value().endswith("@db:5432/tracewire")
    assert not settings.is_sqlite


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("postgresql+asyncpg://tracewire:change-me-now@db/tracewire", True),
        ("postgresql+asyncpg://tracewire:postgres@db/tracewire", True),
        ("postgresql+asyncpg://tracewire:Tracewire@db/tracewire", True),
        ("postgresql+asyncpg://tracewire@db/tracewire", False),  # trust / peer / pgpass
        ("postgresql+asyncpg://tracewire:Pz8wK3nV7qR1mT5yB9cX2hL6@db/tracewire", False),
        ("sqlite+aiosqlite:///./tracewire.db", False),
    ],
)
def test_placeholder_database_passwords_are_refused_outside_dev(url, refused):
    jwt = secrets.token_urlsafe(48)
    Settings(environment="dev", database_url=url)  # dev takes anything
    if not refused:
        Settings(environment="test", database_url=url, jwt_secret=jwt)
        return
    with pytest.raises(ValueError, match="placeholder database password refused outside dev"):
        Settings(environment="test", database_url=url, jwt_secret=jwt)


def test_get_settings_names_the_variable_and_never_the_value(monkeypatch):
    secret = base64.b64encode(os.urandom(20)).decode()
    monkeypatch.setenv("TRACEWIRE_AUDIT_SIGNING_KEY", secret)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    (problem,) = refused.value.problems
    assert problem.startswith("TRACEWIRE_AUDIT_SIGNING_KEY: ")
    assert "32" in problem
    assert secret not in problem
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_validation_errors_hide_their_input():
    secret = secrets.token_urlsafe(10)
    with pytest.raises(ValueError) as refused:
        Settings(environment="test", jwt_secret=secret)
    assert secret not in str(refused.value)
    with pytest.raises(ValueError) as refused:
        JwtKey(kid="k1", secret=secret)
    assert secret not in str(refused.value)
