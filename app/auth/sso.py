"""Single sign-on: an agency's OpenID Connect provider (set by its administrators), which
provider an e-mail address leads to, and which account a checked ID token logs in.

An ID token logs in an account of the provider's agency only: its e-mail must be in one of
the agency's domains; the account is the one bound to the token's (`iss`, `sub`), else the
agency's live account with that e-mail (then bound), else a new `reader` when the agency
lets first logins create accounts. Everything else is refused, with a reason for the audit.
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, User
from app.audit import service as audit
from app.auth import principals
from app.auth.models import IdentityProvider
from app.auth.oidc import SsoRefused
from app.auth.sso_schemas import IdentityProviderRead, IdentityProviderUpdate
from app.authz import rights
from app.authz.principal import Principal, Role
from app.core.config import Settings
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.security import PasswordHashing, new_secret
from app.core.types import utcnow
from app.webhooks import ssrf

CALLBACK_PATH = "/console/login/sso/callback"
NOT_SET = "This agency has no single sign-on provider."


def redirect_uri(settings: Settings) -> str:
    """The callback URL each provider registers for Tracewire."""
    return settings.public_url.rstrip("/") + CALLBACK_PATH


def domains_of(provider: IdentityProvider) -> list[str]:
    """The provider's e-mail domains."""
    return provider.email_domains.split()


def read_model(settings: Settings, provider: IdentityProvider) -> IdentityProviderRead:
    """What the API answers: the provider without its secret."""
    return IdentityProviderRead(
        agency_id=provider.agency_id,
        issuer=provider.issuer,
        client_id=provider.client_id,
        email_claim=provider.email_claim,
        email_domains=domains_of(provider),
        create_users=provider.create_users,
        enabled=provider.enabled,
        redirect_uri=redirect_uri(settings),
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


async def _stored(session: AsyncSession, agency_id: uuid.UUID) -> IdentityProvider | None:
    query = select(IdentityProvider).where(IdentityProvider.agency_id == agency_id)
    return (await session.exec(query)).first()


async def get_provider(
    session: AsyncSession, principal: Principal, agency_id: uuid.UUID
) -> IdentityProvider:
    """The agency's provider, for its administrators; 404 when none is set."""
    rights.require_agency_manager(principal, agency_id)
    provider = await _stored(session, agency_id)
    if provider is None:
        raise NotFound(NOT_SET)
    return provider


def _check_issuer(settings: Settings, issuer: str) -> str:
    try:
        parsed = ssrf.check_url_syntax(issuer, require_https=settings.oidc_needs_https)
    except ssrf.UrlRefused as exc:
        raise InvalidInput.on("issuer", exc.reason) from None
    if parsed.query:
        raise InvalidInput.on("issuer", "an issuer URL has no query")
    return issuer


async def _check_domains_free(
    session: AsyncSession, agency_id: uuid.UUID, domains: list[str]
) -> None:
    others = await session.exec(
        select(IdentityProvider.email_domains).where(IdentityProvider.agency_id != agency_id)
    )
    taken = {d for row in others for d in row.split()} & set(domains)
    for domain in sorted(set(domains) - taken):
        # A domain whose live accounts belong to another agency is that agency's to claim.
        held = await session.exec(
            select(User.id)
            .where(
                col(User.email).endswith("@" + domain, autoescape=True),
                User.agency_id != agency_id,
                col(User.deleted_at).is_(None),
            )
            .limit(1)
        )
        if held.first() is not None:
            taken.add(domain)
    if taken:
        message = (
            f"already claimed by, or the accounts of, another agency: {', '.join(sorted(taken))}"
        )
        error = FieldError(field="email_domains", message=message, location="body")
        raise Conflict(message, errors=[error])


async def set_provider(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    data: IdentityProviderUpdate,
    *,
    settings: Settings,
) -> tuple[IdentityProvider, bool]:
    """Create or replace the agency's provider; (the provider, whether it is new). Audited."""
    rights.require_agency_manager(principal, agency_id)
    if await session.get(Agency, agency_id) is None:
        raise NotFound("No such agency.")
    issuer = _check_issuer(settings, data.issuer)
    domains = list(dict.fromkeys(data.email_domains))
    await _check_domains_free(session, agency_id, domains)
    provider = await _stored(session, agency_id)
    created = provider is None
    if provider is None:
        if data.client_secret is None:
            raise InvalidInput.on("client_secret", "is required when setting up a provider")
        provider = IdentityProvider(
            agency_id=agency_id,
            issuer=issuer,
            client_id=data.client_id,
            client_secret="",
            email_domains="",
        )
    if data.client_secret is not None:
        provider.client_secret = data.client_secret.get_secret_value()
    provider.issuer = issuer
    provider.client_id = data.client_id
    provider.email_claim = data.email_claim
    provider.email_domains = " ".join(domains)
    provider.create_users = data.create_users
    provider.enabled = data.enabled
    provider.updated_at = utcnow()
    session.add(provider)
    await session.flush()
    details: dict[str, object] = {
        "issuer": issuer,
        "client_id": data.client_id,
        "email_domains": domains,
        "create_users": data.create_users,
        "enabled": data.enabled,
        "secret_changed": data.client_secret is not None,
    }
    await audit.record(
        session,
        principal,
        "identity_provider.set",
        object_type="identity_provider",
        object_id=provider.id,
        agency_id=agency_id,
        details=details,
    )
    return provider, created


async def delete_provider(
    session: AsyncSession, principal: Principal, agency_id: uuid.UUID
) -> None:
    """Remove the agency's provider (accounts keep their binding, for a provider set again)."""
    provider = await get_provider(session, principal, agency_id)
    await session.delete(provider)
    await session.flush()
    await audit.record(
        session,
        principal,
        "identity_provider.delete",
        object_type="identity_provider",
        object_id=provider.id,
        agency_id=agency_id,
        details={"issuer": provider.issuer},
    )


def domain_of(email: str) -> str:
    """The domain of an address, lower-cased ('' when it has none)."""
    _, at, domain = email.strip().lower().rpartition("@")
    return domain.rstrip(".") if at else ""


async def provider_for_email(session: AsyncSession, email: str) -> IdentityProvider | None:
    """The enabled provider whose agency owns the address's domain, if any."""
    domain = domain_of(email)
    if not domain or len(domain) > 253:
        return None
    rows = await session.exec(
        select(IdentityProvider).where(
            col(IdentityProvider.enabled).is_(True),
            col(IdentityProvider.email_domains).contains(domain),
        )
    )
    return next((p for p in rows if domain in domains_of(p)), None)


def _email_claim(provider: IdentityProvider, claims: dict[str, object]) -> str:
    value = claims.get(provider.email_claim)
    if not isinstance(value, str) or "@" not in value or len(value) > 254:
        raise SsoRefused("no usable e-mail claim")
    verified = claims.get("email_verified", True)
    # Some providers send the claim as a string: only true (or "true") is a verified address.
    if verified is not True and str(verified).strip().lower() != "true":
        raise SsoRefused("e-mail not verified by the provider")
    email = value.strip().lower()
    if domain_of(email) not in domains_of(provider):
        raise SsoRefused(
            "e-mail outside the agency's domains",
            "Your agency's single sign-on vouched for an address that is not one of your "
            "agency's. Ask your agency's administrators.",
        )
    return email


async def account_for(
    session: AsyncSession,
    provider: IdentityProvider,
    claims: dict[str, object],
    *,
    hashing: PasswordHashing,
) -> User:
    """The account a checked ID token logs in (bound or created here); SsoRefused if none
    may. The caller audits the refusal."""
    agency = await session.get(Agency, provider.agency_id)
    if agency is None or agency.status != AgencyStatus.active:
        raise SsoRefused("agency suspended", "Your agency's access to Tracewire is suspended.")
    email = _email_claim(provider, claims)
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    bound = (
        await session.exec(
            select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
        )
    ).first()
    user = bound or await _by_email(session, provider, email, issuer, subject)
    if user is None:
        if not provider.create_users:
            raise SsoRefused(
                "no account",
                "You have no Tracewire account yet. Ask your agency's administrators for one.",
            )
        user = await _create(session, provider, claims, email, hashing)
    if user.agency_id != provider.agency_id:
        raise SsoRefused("identity bound to another agency's account")
    if not principals.user_may_log_in(user, agency):
        raise SsoRefused("account deactivated or deleted", "Your account may not log in.")
    return user


async def _by_email(
    session: AsyncSession, provider: IdentityProvider, email: str, issuer: str, subject: str
) -> User | None:
    """The agency's live account with this address, bound here to the identity; None if none."""
    user = (
        await session.exec(select(User).where(User.email == email, col(User.deleted_at).is_(None)))
    ).first()
    if user is None:
        return None
    if user.agency_id != provider.agency_id:
        raise SsoRefused("e-mail belongs to another agency's account")
    if user.oidc_subject is not None:
        raise SsoRefused("account bound to another identity")
    user.oidc_issuer, user.oidc_subject = issuer, subject
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        None,
        "user.sso_bind",
        object_type="user",
        object_id=user.id,
        agency_id=user.agency_id,
        actor_name=user.email,
        details={"issuer": issuer},
    )
    return user


async def _create(
    session: AsyncSession,
    provider: IdentityProvider,
    claims: dict[str, object],
    email: str,
    hashing: PasswordHashing,
) -> User:
    name = claims.get("name")
    user = User(
        agency_id=provider.agency_id,
        email=email,
        full_name=name.strip()[:200] if isinstance(name, str) and name.strip() else email,
        role=Role.reader,
        # No password anyone knows: the account logs in through its provider (or after a
        # password reset by its administrators).
        password_hash=hashing.hash(new_secret("")),
        oidc_issuer=str(claims["iss"]),
        oidc_subject=str(claims["sub"]),
    )
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        None,
        "user.create",
        object_type="user",
        object_id=user.id,
        agency_id=user.agency_id,
        actor_name=f"single sign-on ({provider.issuer})"[:200],
        details={"role": Role.reader.value, "via": "oidc"},
    )
    return user


async def record_refusal(
    session: AsyncSession,
    reason: str,
    *,
    agency_id: uuid.UUID | None,
    user: User | None = None,
    email: str | None = None,
) -> None:
    """Audit a refused single sign-on login (nothing else of the attempt is kept)."""
    await audit.record(
        session,
        None,
        "auth.login",
        object_type="user",
        object_id=user.id if user else None,
        agency_id=agency_id,
        actor_name=(user.email if user else email) or "unknown account",
        outcome="failure",
        details={"grant": "oidc", "reason": reason[:200]},
    )
