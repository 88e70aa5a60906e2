"""The committed OpenAPI document is the one the app generates."""

from __future__ import annotations

import json

from app.cli.ops import OPENAPI_PATH, render_openapi
from app.main import create_app
from tests.conftest import settings_for


def _document() -> dict:
    return create_app(settings_for("sqlite+aiosqlite:///:memory:")).openapi()


def test_committed_openapi_matches_the_app():
    committed = OPENAPI_PATH.read_text()
    assert committed == render_openapi(_document()), (
        "openapi/openapi.json is stale: run `tracewire openapi` and commit the result"
    )


def test_every_operation_declares_its_problem_answers():
    document = json.loads(render_openapi(_document()))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/v1/") and path != "/api/v1/auth/token":
                # Revocation and setting a password by a one-time token need no login.
                unauthenticated = ("/api/v1/auth/revoke", "/api/v1/auth/set-password")
                assert "401" in operation["responses"] or path in unauthenticated, (
                    method,
                    path,
                )
            assert "422" in operation["responses"] or (
                not operation.get("parameters") and ("requestBody" not in operation)
            ), (method, path)


def test_swagger_authorize_offers_the_password_grant():
    scheme = _document()["components"]["securitySchemes"]["OAuth2"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/api/v1/auth/token"
