"""The console's single sign-on: the person types their e-mail, its domain picks their
agency's OpenID Connect provider, the browser goes there (code flow with PKCE S256, `state`
and `nonce`) and comes back to the callback, which checks everything before a login.

Between the two the browser holds a short-lived signed cookie with the login's `state`,
`nonce` and PKCE verifier. It is SameSite=Lax, not Strict like the console's others: the
callback is a navigation from the provider's site, and a Strict cookie would not come
with it. For the same reason the callback answers with a page that moves on by itself
rather than a redirect: the console's Strict cookies it sets come with that next request.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, User
from app.auth import credentials, mfa, oidc, sso
from app.auth.context import AuthContext
from app.auth.deps import AuthContextDep
from app.auth.models import IdentityProvider
from app.auth.oidc_fetch import ProviderHttp
from app.console import second_factor, sessions
from app.console.deps import render
from app.core.db import SessionDep
from app.core.security import secrets_equal
from app.core.tokens import InvalidToken

router = APIRouter(prefix="/console", include_in_schema=False)
STATE_COOKIE = "tw_console_sso"
STATE_COOKIE_PATH = "/console/login/sso"
NEUTRAL = (
    "Single sign-on is not available for this address. Log in with your password, or ask "
    "your agency's administrators."
)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return "/console/"


def _set_state_cookie(request: Request, response: Response, value: str | None) -> None:
    setting = request.app.state.settings.console_cookie_secure
    secure = (
        bool(setting)
        if setting is not None
        else getattr(request.state, "client_scheme", request.url.scheme) == "https"
    )
    if value is None:
        response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH, secure=secure)
        return
    response.set_cookie(
        STATE_COOKIE, value, path=STATE_COOKIE_PATH, httponly=True, samesite="lax", secure=secure
    )


def _page(request: Request, *, message: str, title: str, status_code: int) -> HTMLResponse:
    response = render(
        request, "sso_refused.html", {"message": message, "title": title}, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    _set_state_cookie(request, response, None)
    return response


@router.post("/login/sso")
async def start(request: Request, session: SessionDep, ctx: AuthContextDep) -> Response:
    """From the login page's e-mail to the agency's provider (or the same neutral answer)."""
    form = await request.form()
    sent, expected = form.get("login_csrf"), request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not secrets_equal(sent, expected):
        return _page(
            request,
            title="Please try again",
            message="Your login form expired or was not sent from this page; please try again.",
            status_code=403,
        )
    email = str(form.get("email") or "").strip().lower()[:254]
    provider = await sso.provider_for_email(session, email) if "@" in email else None
    if provider is None:
        return _page(request, title="Single sign-on", message=NEUTRAL, status_code=200)
    try:
        endpoints = await oidc.discover(ProviderHttp(ctx.settings), provider.issuer)
    except oidc.SsoRefused as exc:
        await sso.record_refusal(session, exc.reason, agency_id=provider.agency_id, email=email)
        return _page(request, title="Single sign-on failed", message=exc.message, status_code=502)
    auth = oidc.authorization_request(
        endpoints,
        client_id=provider.client_id,
        redirect_uri=sso.redirect_uri(ctx.settings),
        login_hint=email,
    )
    claims = {
        "typ": "sso_pending",
        "sub": str(provider.id),
        "iss_": provider.issuer,
        "st": auth.state,
        "no": auth.nonce,
        "cv": auth.code_verifier,
        "em": email,
        "next": _safe_next(str(form.get("next") or "")),
    }
    ttl = ctx.settings.oidc_login_ttl_seconds
    cookie = ctx.keys.sign(claims, ttl=timedelta(seconds=ttl), now=ctx.clock())
    # A page, not a redirect: the login page's CSP (`form-action 'self'`) also holds for
    # where its form's answer redirects, and the provider is another site.
    response = render(
        request,
        "sso_onward.html",
        {
            "target": auth.url,
            "title": "Going to your agency's sign-in",
            "link": "Continue to your agency's sign-in page",
        },
    )
    response.headers["Cache-Control"] = "no-store"
    _set_state_cookie(request, response, cookie)
    return response


def _pending(ctx: AuthContext, request: Request) -> dict[str, object] | None:
    token = request.cookies.get(STATE_COOKIE)
    if not token or len(token) > 4096:
        return None
    try:
        claims = ctx.keys.verify(token, now=ctx.clock())
    except InvalidToken:
        return None
    if claims.get("typ") != "sso_pending" or not all(
        isinstance(claims.get(k), str) for k in ("iss_", "st", "no", "cv", "em", "next")
    ):
        return None
    return claims


async def _provider(session: AsyncSession, claims: dict[str, object]) -> IdentityProvider:
    try:
        provider = await session.get(IdentityProvider, uuid.UUID(str(claims["sub"])))
    except ValueError:
        provider = None
    if provider is None or not provider.enabled or provider.issuer != claims["iss_"]:
        raise oidc.SsoRefused("provider removed, disabled or changed during the login")
    return provider


@router.get("/login/sso/callback")
async def callback(request: Request, session: SessionDep, ctx: AuthContextDep) -> Response:
    """Where the provider sends the browser back: check everything, then log in."""
    claims = _pending(ctx, request)
    if claims is None:
        return _page(
            request,
            title="Please log in again",
            message="This single sign-on login expired or was not started here; start again.",
            status_code=400,
        )
    email = str(claims["em"])
    agency_id: uuid.UUID | None = None
    try:
        provider = await _provider(session, claims)
        agency_id = provider.agency_id
        user = await _sign_in(request, session, ctx, provider, claims)
    except oidc.SsoRefused as exc:
        await session.rollback()  # nothing of the attempt is kept but its audit record
        await sso.record_refusal(session, exc.reason, agency_id=agency_id, email=email)
        return _page(request, title="Single sign-on refused", message=exc.message, status_code=403)
    return await _logged_in(request, session, ctx, user, str(claims["next"]))


async def _sign_in(
    request: Request,
    session: AsyncSession,
    ctx: AuthContext,
    provider: IdentityProvider,
    claims: dict[str, object],
) -> User:
    """The callback's checks, in order: state, the provider's answer, the code exchange, the
    ID token, the account."""
    params = request.query_params
    state = params.get("state") or ""
    if not secrets_equal(state, str(claims["st"])):
        raise oidc.SsoRefused("state mismatch")
    sent_iss = params.get("iss")
    if sent_iss is not None and sent_iss != provider.issuer:
        # RFC 9207: the answer names another issuer (a mix-up between providers).
        raise oidc.SsoRefused("authorization answer from another issuer")
    if params.get("error"):
        raise oidc.SsoRefused(f"provider answered {params['error'][:60]}")
    code = params.get("code") or ""
    if not code or len(code) > 2048:
        raise oidc.SsoRefused("no authorization code")
    http = ProviderHttp(ctx.settings)
    endpoints = await oidc.discover(http, provider.issuer)
    tokens = await oidc.exchange_code(
        http,
        endpoints,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        code=code,
        redirect_uri=sso.redirect_uri(ctx.settings),
        code_verifier=str(claims["cv"]),
    )
    id_claims = await oidc.verify_id_token(
        http,
        endpoints,
        tokens,
        client_id=provider.client_id,
        nonce=str(claims["no"]),
        now=ctx.clock(),
        leeway=ctx.settings.jwt_leeway_seconds,
    )
    return await sso.account_for(session, provider, id_claims, hashing=ctx.hashing)


async def _logged_in(
    request: Request, session: AsyncSession, ctx: AuthContext, user: User, next_url: str
) -> Response:
    """The second step when it is due (as after a password), else the console session."""
    agency = await session.get(Agency, user.agency_id)
    assert agency is not None  # account_for read it
    if mfa.due(ctx.settings, user, agency):
        pending = await second_factor.begin(session, ctx, user, next_url)
        response = _onward(request, second_factor.PAGE)
        sessions.set_cookie(request, response, second_factor.PENDING_COOKIE, pending)
        return response
    await credentials.finish_login(session, user, channel="oidc")
    token = await sessions.start(session, ctx, user)
    response = _onward(request, next_url)
    sessions.set_cookie(request, response, sessions.COOKIE, token)
    return response


def _onward(request: Request, target: str) -> HTMLResponse:
    """A page that moves on to `target` at once (a same-site navigation, see above)."""
    response = render(request, "sso_onward.html", {"target": target, "title": None, "link": None})
    response.headers["Cache-Control"] = "no-store"
    _set_state_cookie(request, response, None)
    return response
