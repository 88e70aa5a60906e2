"""Console dependencies: the logged-in session (or a redirect to login), CSRF, rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.auth.deps import AuthContextDep
from app.authz.principal import Role
from app.console import sessions
from app.console.charts import tlp_class
from app.core.db import SessionDep
from app.core.errors import Forbidden
from app.core.security import secrets_equal

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals["tlp_class"] = tlp_class
TEMPLATES.env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M UTC") if v else "—"
TEMPLATES.env.filters["day"] = lambda v: v.strftime("%Y-%m-%d") if v else "—"
TEMPLATES.env.filters["label"] = lambda v: str(v or "").replace("_", " ")
TEMPLATES.env.filters["zip_pairs"] = lambda seq: [(v, str(v).replace("_", " ")) for v in seq]


class LoginRequired(Exception):
    """No live console session: answer with a redirect to the login page."""


class CsrfRefused(Exception):
    """A form post without the session's CSRF token: 403."""


async def get_live(request: Request, session: SessionDep, ctx: AuthContextDep) -> sessions.Live:
    """The live console session of this request, or LoginRequired."""
    live = await sessions.resume(session, ctx, request.cookies.get(sessions.COOKIE))
    if live is None:
        # Keep the deletion of an expired or refused session: the error rolls back.
        await session.commit()
        raise LoginRequired()
    request.state.console_live = live
    return live


LiveDep = Annotated[sessions.Live, Depends(get_live)]


async def check_csrf(request: Request, live: LiveDep) -> sessions.Live:
    """A POST must carry the session's synchronizer token (form field or header)."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not secrets_equal(sent, live.csrf):
        raise CsrfRefused()
    return live


PostDep = Annotated[sessions.Live, Depends(check_csrf)]


def require_role(live: sessions.Live, *roles: Role) -> None:
    """Pages of a role the user lacks are 403 (the services check again)."""
    if live.principal.role not in roles:
        raise Forbidden("Your role does not give access to this page.")


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A console page, with the session (if any) and its CSRF token in the context."""
    live: sessions.Live | None = getattr(request.state, "console_live", None)
    base = {
        "live": live,
        "me": live.principal if live else None,
        "csrf": live.csrf if live else "",
        "Role": Role,
    }
    return TEMPLATES.TemplateResponse(request, template, base | context, status_code=status_code)
