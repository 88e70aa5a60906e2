"""The deployment as written is safe: a TLS proxy in front, no API port on the host,
forwarded headers trusted from exactly the compose network, health checks on readiness,
placeholder secrets refused, an image that builds without fetching a frontend.

`docker compose config` checks the compose file where Docker Compose is installed; the
same invariants are always checked on the YAML itself."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import ConfigurationError, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROXY_IMAGES = ("caddy:", "nginx:")


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def _yaml_model() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _compose_model(tmp_path: Path) -> dict[str, Any]:
    """`docker compose config` of the deploy folder, with the example env filled in."""
    command = _compose_command()
    if command is None:
        pytest.skip("Docker Compose is not installed (the YAML invariants are still tested)")
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    shutil.copy(DEPLOY / "tracewire.env.example", copy / "tracewire.env")
    done = subprocess.run(
        [*command, "-f", "compose.yaml", "--env-file", "tracewire.env", "config"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def _healthcheck(service: dict[str, Any]) -> str:
    test = service.get("healthcheck", {}).get("test", [])
    return " ".join(test) if isinstance(test, list) else str(test)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _check_invariants(model: dict[str, Any]) -> None:
    services = model["services"]
    assert set(services) == {"proxy", "api", "worker", "postgres"}
    # Only the proxy is published; it is an official image of a TLS-terminating proxy.
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"proxy"}
    assert services["proxy"]["image"].startswith(PROXY_IMAGES)
    ports = {
        str(p["target"] if isinstance(p, dict) else p.split(":")[-1])
        for p in services["proxy"]["ports"]
    }
    assert "443" in ports
    # Readiness (database reachable), not mere liveness, decides the API is healthy.
    assert "/readyz" in _healthcheck(services["api"])
    assert "pg_isready" in _healthcheck(services["postgres"])
    assert _healthcheck(services["proxy"])
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"
    # The network's subnet is pinned and is exactly what the API trusts.
    (network,) = model["networks"]
    subnets = [c["subnet"] for c in model["networks"][network]["ipam"]["config"]]
    assert len(subnets) == 1
    subnet = ipaddress.ip_network(subnets[0])
    for name, service in services.items():
        attached = service.get("networks", [])
        assert network in attached, name
    for name in ("api", "worker"):
        env = _environment(services[name])
        assert env["TRACEWIRE_ENVIRONMENT"] == "prod"
        trusted = [ipaddress.ip_network(c) for c in env["TRACEWIRE_TRUSTED_PROXIES"].split(",")]
        assert trusted == [subnet], name


def test_compose_file_invariants():
    _check_invariants(_yaml_model())


def test_docker_compose_config_accepts_the_file_and_keeps_the_invariants(tmp_path):
    _check_invariants(_compose_model(tmp_path))


def test_env_example_trusts_the_compose_subnet():
    (network,) = _yaml_model()["networks"].values()
    subnet = network["ipam"]["config"][0]["subnet"]
    assert _env_file(DEPLOY / "tracewire.env.example")["TRACEWIRE_TRUSTED_PROXIES"] == subnet


def test_caddyfile_terminates_tls_and_proxies_to_the_api():
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert re.search(r"^\s*reverse_proxy api:8000\s*$", caddyfile, re.M)
    assert re.search(r"^\s*tls /certs/fullchain\.pem /certs/privkey\.pem\s*$", caddyfile, re.M)
    proxy = _yaml_model()["services"]["proxy"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "./certs:/certs:ro" in proxy["volumes"]


def test_dockerfile_builds_offline_and_checks_readiness():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I)  # no frontend to fetch
    joined = dockerfile.replace("\\\n", " ")  # continuation lines
    (healthcheck,) = re.findall(r"^HEALTHCHECK .*$", joined, re.M)
    assert "/readyz" in healthcheck and "/healthz" not in healthcheck
    assert re.search(r"^USER ", dockerfile, re.M)


def test_readme_gives_the_compose_command():
    readme = (ROOT / "README.md").read_text()
    assert (
        "docker compose -f deploy/compose.yaml --env-file deploy/tracewire.env up -d --build"
        in readme
    )


def _example_settings(**replace: str) -> dict[str, str]:
    """The example env as the API container sees it (compose's values win)."""
    values = _env_file(DEPLOY / "tracewire.env.example")
    api = _environment(_yaml_model()["services"]["api"])
    values.update({k: v for k, v in api.items() if "${" not in v})
    password = replace.pop("POSTGRES_PASSWORD", values["POSTGRES_PASSWORD"])
    values["TRACEWIRE_DATABASE_URL"] = (
        f"postgresql+asyncpg://tracewire:{password}@postgres:5432/tracewire"
    )
    values.update(replace)
    return {
        k.removeprefix("TRACEWIRE_").lower(): v
        for k, v in values.items()
        if k.startswith("TRACEWIRE_")
    }


def _settings(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    from app.core.config import get_settings

    for name in list(os.environ):
        if name.startswith("TRACEWIRE_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(f"TRACEWIRE_{name.upper()}", value)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


REAL = {
    "TRACEWIRE_JWT_SECRET": "x7Qm3vR9tY2pL8kW4nB6cF1hJ5dS0gA-real-jwt-secret",
    "TRACEWIRE_AUDIT_SIGNING_KEY": "9M1z3hW2mS0r1v8nG7k5xQ4pB2cD6fH8jL0tY3uI5oE=",
    "POSTGRES_PASSWORD": "Pz8wK3nV7qR1mT5yB9cX2hL6dF4gJ0sA",
}


def test_the_example_env_as_shipped_is_refused(monkeypatch):
    with pytest.raises(ConfigurationError) as refused:
        _settings(_example_settings(), monkeypatch)
    assert refused.value.problems
    assert all(p.startswith("TRACEWIRE_") for p in refused.value.problems)
    # With a real audit key, the next refusal is the placeholder JWT secret.
    key = {"TRACEWIRE_AUDIT_SIGNING_KEY": REAL["TRACEWIRE_AUDIT_SIGNING_KEY"]}
    with pytest.raises(ConfigurationError, match="placeholder secret refused"):
        _settings(_example_settings(**key), monkeypatch)


@pytest.mark.parametrize(
    "placeholder",
    ["change-me-generate-a-database-password", "postgres", "password", "changeme123"],
)
def test_a_placeholder_database_password_is_refused_like_a_placeholder_jwt_secret(
    monkeypatch, placeholder
):
    values = _example_settings(**{**REAL, "POSTGRES_PASSWORD": placeholder})
    with pytest.raises(ConfigurationError) as refused:
        _settings(values, monkeypatch)
    # Exactly this message: it names the variable and never the value.
    assert refused.value.problems == [
        "TRACEWIRE_DATABASE_URL: placeholder database password refused outside dev"
    ]


def test_the_example_env_with_real_secrets_is_accepted(monkeypatch):
    settings = _settings(_example_settings(**REAL), monkeypatch)
    assert settings.environment == "prod"
    assert settings.trusted_proxies == ["172.30.70.0/24"]
    assert REAL["POSTGRES_PASSWORD"] not in repr(settings)
    assert json.dumps(REAL["POSTGRES_PASSWORD"]) not in settings.model_dump_json()
