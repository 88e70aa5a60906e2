"""`tracewire serve` with test-only routes that always fail, for the unexpected-error tests.

`python -m tests.core.failing_serve serve --port N` runs the real command and the real app,
plus these routes: the app itself has no way to fail on purpose, and must not have one.
"""

from __future__ import annotations

from typing import Any

import app.main
from app.cli import main

FAILING_PATHS = ("/api/v1/test-only/fail", "/console/test-only/fail", "/taxii2/test-only/fail")
_create_app = app.main.create_app


def _fail() -> None:
    raise RuntimeError("forced by the test")


def add_failing_routes(application: Any) -> Any:
    """Give `application` a route under each of its three faces that raises."""
    for path in FAILING_PATHS:
        application.add_api_route(path, _fail, include_in_schema=False)
        # First, ahead of the TAXII router's catch-all 404.
        application.router.routes.insert(0, application.router.routes.pop())
    return application


def create_app(settings: Any = None) -> Any:
    """The real app, with the failing routes."""
    return add_failing_routes(_create_app(settings))


if __name__ == "__main__":
    app.main.create_app = create_app  # uvicorn imports "app.main:create_app" after this
    main()
