"""The one settings class: every knob is read here, from `TRACEWIRE_*` variables."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url

from app.core.config_secrets import (
    AUDIT_KEY_FILE,
    JWT_SECRET_FILE,
    decode_key,
    has_placeholder_password,
    is_placeholder,
    read_or_create_secret,
    read_secret_file,
)

JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "ES256"]


def webhook_allow_entry(
    entry: str,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]:
    """`ADDRESS[/PREFIX]:PORT` (IPv6 in brackets) as (network, port); ValueError otherwise."""
    text = entry.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    # An IPv6 address goes in brackets: `fd00::7:8443` could be an address without a port.
    bare_v6 = not text.startswith("[") and ":" in host
    if bare_v6 or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"webhook_allow_networks: {entry!r} must name an address and a port, "
            "e.g. 10.1.2.3:8443, 10.1.0.0/16:443 or [fd00::7]:8443"
        )
    return ipaddress.ip_network(host, strict=False), int(port)


class JwtKey(BaseModel):
    """One entry of the JWT key ring: a key id, its pinned algorithm and its material."""

    # A validation error must never print what was given: it may be the secret.
    model_config = ConfigDict(hide_input_in_errors=True)

    kid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    alg: JwtAlgorithm = "HS256"
    secret: SecretStr | None = None
    private_key_file: Path | None = None
    public_key_file: Path | None = None

    @model_validator(mode="after")
    def _check_material(self) -> JwtKey:
        if self.alg.startswith("HS"):
            if self.secret is None:
                raise ValueError(f"key {self.kid}: {self.alg} needs `secret`")
            if len(self.secret.get_secret_value().encode()) < 32:
                raise ValueError(f"key {self.kid}: HMAC secrets must be at least 32 bytes")
        elif self.public_key_file is None:
            raise ValueError(f"key {self.kid}: {self.alg} needs `public_key_file`")
        return self


def _default_retry_schedule() -> list[float]:
    return [5, 300, 1800, 7200, 18000, 36000, 36000]


class Settings(BaseSettings):
    """Tracewire configuration; see the table in README.md."""

    # hide_input_in_errors: a validation error never prints a value (it may be a secret).
    model_config = SettingsConfigDict(
        env_prefix="TRACEWIRE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["dev", "test", "prod"] = "dev"
    # Where generated secrets live (JWT secret, audit signing key), mode 0700/0600.
    data_dir: Path = Path("data")
    # Secret: a PostgreSQL URL carries the password (`database_url.get_secret_value()`).
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///./tracewire.db")
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_echo: bool = False

    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True

    jwt_issuer: str = "tracewire"
    jwt_audience: str = "tracewire-api"
    jwt_keys: Annotated[list[JwtKey], NoDecode] = Field(default_factory=list)
    jwt_active_kid: str | None = None
    jwt_secret: SecretStr | None = None  # shorthand for a one-key HS256 ring
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=300)
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # How long an invitation (a one-time set-password link) stays usable.
    invitation_ttl_seconds: int = Field(default=3 * 86400, ge=300, le=30 * 86400)

    # argon2id, OWASP's recommendation: m = 19 MiB, t = 2, p = 1.
    password_hash_memory_kib: int = Field(default=19456, ge=8)
    password_hash_time_cost: int = Field(default=2, ge=1)
    password_hash_parallelism: int = Field(default=1, ge=1)
    password_min_length: int = Field(default=12, ge=8)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Transport and abuse limits (app/core/hardening.py).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(default=1200, ge=0)
    token_rate_limit_per_minute: int = Field(default=20, ge=0)

    # Failed password logins per typed username: this many are free, then a doubling wait.
    login_max_failures: int = Field(default=5, ge=1)
    login_backoff_base_seconds: int = Field(default=30, ge=1)
    login_backoff_max_seconds: int = Field(default=900, ge=1)

    # Second factor: every user must log in with one (each agency may also require it of
    # its own users), and the name authenticator apps show beside the account.
    require_mfa: bool = False
    mfa_issuer: str = Field(default="Tracewire", min_length=1, max_length=60)
    # Passkeys: the WebAuthn relying party ID (a domain); unset, the host of `public_url`.
    # Browsers only offer passkeys for a domain name (localhost included), not an address.
    webauthn_rp_id: str | None = Field(default=None, max_length=253)

    # Web console sessions: idle timeout, absolute lifetime, and the cookie's Secure flag
    # (None: Secure when the request came over https, directly or via a trusted proxy).
    console_idle_timeout_seconds: int = Field(default=1800, ge=60)
    console_session_lifetime_seconds: int = Field(default=12 * 3600, ge=300)
    console_cookie_secure: bool | None = None

    # Default trace-request deadlines, in days (a design choice; the ITI sets none).
    trace_routine_ack_days: int = Field(default=5, ge=1)
    trace_routine_response_days: int = Field(default=30, ge=1)
    trace_urgent_ack_days: int = Field(default=1, ge=1)
    trace_urgent_response_days: int = Field(default=3, ge=1)

    # The Ed25519 key that signs the audit chain's head: its base64 32-byte seed, here or in
    # a file (required in prod); elsewhere, without either, generated into `data_dir`.
    audit_signing_key: SecretStr | None = None
    audit_signing_key_file: Path | None = None
    # For a host that only verifies (an auditor's): the base64 raw 32-byte public key.
    audit_public_key: str | None = None
    audit_sign_every_seconds: float = Field(default=300.0, gt=0)

    # Webhooks.
    webhook_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "ADDRESS[/PREFIX]:PORT endpoints subscribers may reach although not public "
            "(tests: 127.0.0.1:<receiver port>); each names one port."
        ),
    )
    webhook_require_https: bool | None = None  # None: required outside `dev`
    webhook_secret_overlap_seconds: int = Field(default=86400, ge=0)
    webhook_connect_timeout: float = Field(default=5.0, gt=0)
    webhook_read_timeout: float = Field(default=10.0, gt=0)
    webhook_max_response_bytes: int = Field(default=65536, ge=1024)
    webhook_concurrency: int = Field(default=64, ge=1)
    webhook_concurrency_per_subscription: int = Field(default=8, ge=1)
    webhook_lease_seconds: int = Field(default=60, ge=5)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_disable_after_failures: int = Field(default=50, ge=1)
    # Seconds to wait before each retry (then `failed`): about 5 s, 5 min, 30 min, 2 h, 5 h,
    # 10 h, 10 h, with up to 20 % jitter.
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=_default_retry_schedule
    )

    # None = automatic: `serve` runs the worker in-process on SQLite only.
    worker_in_process: bool | None = None

    # Single sign-on with an agency's own OpenID Connect provider: the endpoints its
    # issuer may be reached at although not public (tests: 127.0.0.1:<provider port>),
    # whether the issuer must be https (None: outside `dev`), and limits on every fetch
    # of its discovery document, keys and token endpoint.
    oidc_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="ADDRESS[/PREFIX]:PORT endpoints an issuer may be at although not public.",
    )
    oidc_require_https: bool | None = None
    oidc_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    oidc_max_response_bytes: int = Field(default=256 * 1024, ge=4096, le=4 * 1024 * 1024)
    # How long a login may stay at the provider (the signed state cookie's lifetime).
    oidc_login_ttl_seconds: int = Field(default=600, ge=60, le=3600)

    @field_validator(
        "webhook_allow_networks",
        "oidc_allow_networks",
        "webhook_retry_schedule",
        "trusted_proxies",
        "cors_origins",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_allow_networks", "oidc_allow_networks")
    @classmethod
    def _check_allow_networks(cls, value: list[str]) -> list[str]:
        # A network without a port once let a subscription reach every local service.
        for entry in value:
            webhook_allow_entry(entry)
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _check_audit_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_key(value.get_secret_value())
        return value

    @field_validator("audit_public_key")
    @classmethod
    def _check_audit_public_key(cls, value: str | None) -> str | None:
        if value is not None:
            decode_key(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except Exception:  # sqlalchemy's ArgumentError quotes the URL: never pass it on
            raise ValueError(
                "not a database URL (sqlite+aiosqlite:///FILE or postgresql+asyncpg://…)"
            ) from None
        return value

    @field_validator("jwt_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    def _default_jwt_key(self) -> JwtKey:
        """The one HS256 key from TRACEWIRE_JWT_SECRET, or a generated one outside prod."""
        given = self.jwt_secret
        if given is not None and len(given.get_secret_value().encode()) < 32:
            raise ValueError("TRACEWIRE_JWT_SECRET: must be at least 32 bytes")
        if given is None and self.environment == "prod":
            raise ValueError("TRACEWIRE_JWT_SECRET or TRACEWIRE_JWT_KEYS: required in prod")
        secret = given or SecretStr(
            read_or_create_secret(
                self.data_dir / JWT_SECRET_FILE, lambda: secrets.token_urlsafe(48)
            )
        )
        return JwtKey(kid="default", alg="HS256", secret=secret)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.jwt_keys:
            self.jwt_keys = [self._default_jwt_key()]
        kids = [k.kid for k in self.jwt_keys]
        if len(set(kids)) != len(kids):
            raise ValueError("TRACEWIRE_JWT_KEYS: key ids must be unique")
        if self.jwt_active_kid is None:
            self.jwt_active_kid = kids[0]
        active = self.active_jwt_key
        if active.alg[:2] in ("RS", "ES") and active.private_key_file is None:
            raise ValueError(
                f"TRACEWIRE_JWT_ACTIVE_KID: key {active.kid} signs, so it needs `private_key_file`"
            )
        for key in self.jwt_keys:
            if key.secret is not None and is_placeholder(key.secret.get_secret_value()):
                raise ValueError(
                    f"TRACEWIRE_JWT_SECRET / TRACEWIRE_JWT_KEYS: key {key.kid}: placeholder "
                    "secret refused; set a random one, or unset both (outside prod) to have "
                    f"one generated into {self.data_dir / JWT_SECRET_FILE}"
                )
        if self.environment != "dev":
            if has_placeholder_password(self.database_url.get_secret_value()):
                raise ValueError(
                    "TRACEWIRE_DATABASE_URL: placeholder database password refused outside dev"
                )
        if (
            self.environment == "prod"
            and self.audit_signing_key is None
            and self.audit_signing_key_file is None
        ):
            raise ValueError(
                "TRACEWIRE_AUDIT_SIGNING_KEY or TRACEWIRE_AUDIT_SIGNING_KEY_FILE: required in prod"
            )
        return self

    def audit_signing_seed(self) -> bytes | None:
        """The audit head key's 32-byte seed: settings, its file, or generated (not in prod)."""
        if self.audit_signing_key is not None:
            return decode_key(self.audit_signing_key.get_secret_value())
        if self.audit_signing_key_file is not None:
            path = self.audit_signing_key_file
            return decode_key(read_secret_file(path), str(path))
        if self.environment == "prod" or self.audit_public_key is not None:
            return None  # a verifying host: it signs nothing
        path = self.data_dir / AUDIT_KEY_FILE
        seed = read_or_create_secret(path, lambda: base64.b64encode(os.urandom(32)).decode())
        return decode_key(seed, str(path))

    @property
    def active_jwt_key(self) -> JwtKey:
        """The key new tokens are signed with."""
        for key in self.jwt_keys:
            if key.kid == self.jwt_active_kid:
                return key
        raise ValueError(f"TRACEWIRE_JWT_ACTIVE_KID: {self.jwt_active_kid!r} is not a key id")

    @property
    def runs_worker_in_process(self) -> bool:
        """Whether `serve` should also run the background worker."""
        return self.is_sqlite if self.worker_in_process is None else self.worker_in_process

    @property
    def webhooks_need_https(self) -> bool:
        """Whether subscriber URLs must be https."""
        if self.webhook_require_https is None:
            return self.environment != "dev"
        return self.webhook_require_https

    @property
    def oidc_needs_https(self) -> bool:
        """Whether an identity provider's issuer (and its endpoints) must be https."""
        if self.oidc_require_https is None:
            return self.environment != "dev"
        return self.oidc_require_https

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.get_secret_value().startswith("sqlite")


class ConfigurationError(Exception):
    """The settings in the environment are invalid; the message names each variable at
    fault and what is wrong with it, and never a value (values may be secrets)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def describe_errors(exc: ValidationError | SettingsError) -> list[str]:
    """One line per fault, `TRACEWIRE_NAME: what is wrong`, with no value in it."""
    if isinstance(exc, SettingsError):
        # pydantic-settings names the field and the source, never the value.
        field = re.search(r'field "([a-z0-9_]+)"', str(exc))
        name = f"TRACEWIRE_{field.group(1).upper()}" if field else "settings"
        return [f"{name}: cannot be parsed"]
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        loc = [str(part) for part in error["loc"]]
        if loc:
            where = f"TRACEWIRE_{loc[0].upper()}"
            if len(loc) > 1:
                where += " (" + ".".join(loc[1:]) + ")"
            problems.append(f"{where}: {message}")
        else:  # a rule across settings: its message names the variables
            problems.append(message)
    return problems


@lru_cache
def get_settings() -> Settings:
    """Settings read once from the environment; ConfigurationError when they are invalid."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise ConfigurationError(describe_errors(exc)) from None
