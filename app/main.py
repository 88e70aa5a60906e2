"""`create_app()`: routers, middleware, error handlers and the process-wide resources."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__, wiring
from app.agencies.routes import router as agencies_router
from app.alerts.routes import router as alerts_router
from app.audit.routes import router as audit_router
from app.auth.context import AuthContext
from app.auth.deps import TokenAuthenticator
from app.auth.mfa_routes import router as mfa_router
from app.auth.personal_routes import router as personal_tokens_router
from app.auth.routes import router as auth_router
from app.auth.sso_routes import router as sso_router
from app.authz.deps import install_authenticator
from app.console import install_console
from app.core import heap
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.docs import install_docs
from app.core.errors import install_error_handlers
from app.core.hardening import install_hardening
from app.core.logging import configure_logging
from app.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from app.core.security import PasswordHashing
from app.core.tokens import KeyRing
from app.hits.routes import router as hits_router
from app.interop.routes import router as interop_router
from app.interop.taxii import router as taxii_router
from app.interop.taxii import schema_router as stix_schema_router
from app.interop.taxii_http import TaxiiErrorMiddleware
from app.ops.routes import router as ops_router
from app.sharing.routes import router as sharing_router
from app.traces.routes import router as traces_router
from app.webhooks.delivery.worker import DeliveryWorker
from app.webhooks.routes import router as webhooks_router
from app.worker import Worker, schedules

DESCRIPTION = """
Tracewire is where national focal points exchange structured alerts about weapons
that may reach terrorists (UN Security Council resolution 2370 (2017)): seized
weapons, trace requests and suspicious procurement, under per-agency sharing rules.

Authenticate with `POST /api/v1/auth/token` (the **Authorize** button accepts a
user's email and password). Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application for `settings` (read from the environment if omitted)."""
    settings = settings or get_settings()
    wiring.install()  # events fan out to the webhooks; alerts reach traces and hits
    if not logging.getLogger().handlers:  # a fresh process (uvicorn --workers); not in tests
        configure_logging(settings.log_level, json_format=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runners: list[Worker | DeliveryWorker] = []
        if settings.runs_worker_in_process:
            runners = [
                Worker(app.state.db, schedules(settings)),
                DeliveryWorker(app.state.db, settings),
            ]
        tasks = [asyncio.create_task(r.run(), name="tracewire-worker") for r in runners]
        heap.freeze_start_up_objects()  # the app is built: nothing it holds is garbage
        try:
            yield
        finally:
            for runner in runners:
                runner.stop()
            await asyncio.gather(*tasks)
            await app.state.db.dispose()

    app = FastAPI(
        title="Tracewire",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by install_docs() from the package's own assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = Database(settings)
    app.state.hashing = PasswordHashing(settings)
    app.state.auth = AuthContext(
        settings=settings, keys=KeyRing(settings), hashing=app.state.hashing
    )
    install_authenticator(app, TokenAuthenticator())
    install_error_handlers(app)
    install_docs(app)
    install_console(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    install_hardening(
        app,
        trusted_proxies=settings.trusted_proxies,
        cors_origins=settings.cors_origins,
        rate_per_minute=settings.rate_limit_per_minute,
        token_rate_per_minute=settings.token_rate_limit_per_minute,
    )
    # Outermost: TAXII answers keep their own media type even when middleware refuses.
    app.add_middleware(TaxiiErrorMiddleware)
    app.include_router(ops_router)
    app.include_router(auth_router)
    app.include_router(mfa_router)
    app.include_router(sso_router)
    app.include_router(personal_tokens_router)
    app.include_router(agencies_router)
    app.include_router(alerts_router)
    app.include_router(sharing_router)
    app.include_router(traces_router)
    app.include_router(hits_router)
    app.include_router(webhooks_router)
    app.include_router(audit_router)
    app.include_router(interop_router)
    app.include_router(taxii_router)
    app.include_router(stix_schema_router)
    return app
