"""Password hashing with the production parameters: the suite itself hashes cheaply
(tests/conftest.py), so these tests build the settings a deployment gets by default."""

from __future__ import annotations

import base64
import os
import secrets

import pytest
from argon2 import Type, extract_parameters

from app.core.config import Settings
from app.core.security import PasswordHashing

# DESIGN §11, after OWASP's password storage cheat sheet: argon2id, m = 19 MiB, t = 2, p = 1.
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


@pytest.fixture(scope="module")
def production() -> Settings:
    """The defaults of a prod deployment: nothing about hashing is set."""
    return Settings(
        environment="prod",
        database_url="sqlite+aiosqlite:///:memory:",
        jwt_secret=secrets.token_urlsafe(48),
        audit_signing_key=base64.b64encode(os.urandom(32)).decode(),
    )


@pytest.fixture(scope="module")
def hashing(production: Settings) -> PasswordHashing:
    return PasswordHashing(production)


def test_production_defaults_are_owasps_argon2id(production):
    assert production.password_hash_memory_kib == OWASP_MEMORY_KIB
    assert production.password_hash_time_cost == OWASP_TIME_COST
    assert production.password_hash_parallelism == OWASP_PARALLELISM
    assert production.password_min_length == 12


def test_hashes_carry_the_production_parameters(hashing):
    stored = hashing.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    parameters = extract_parameters(stored)
    assert parameters.type is Type.ID
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (
        OWASP_MEMORY_KIB,
        OWASP_TIME_COST,
        OWASP_PARALLELISM,
    )
    assert parameters.salt_len >= 16 and parameters.hash_len >= 32


def test_production_hashes_verify_and_refuse(hashing):
    stored = hashing.hash("correct horse battery staple")
    assert hashing.verify(stored, "correct horse battery staple")
    assert not hashing.verify(stored, "correct horse battery stapler")
    assert not hashing.verify(None, "correct horse battery staple")  # unknown account
    assert not hashing.verify("not a hash", "correct horse battery staple")
    assert not hashing.needs_rehash(stored)


def test_the_dummy_hash_of_unknown_accounts_costs_as_much_as_a_real_one(hashing):
    # Same parameters => the same work for an unknown account as for a wrong password.
    assert extract_parameters(hashing._dummy_hash) == extract_parameters(hashing.hash("x" * 12))


def test_hashes_made_with_the_suites_cheap_parameters_are_upgraded(production, hashing):
    cheap = PasswordHashing(
        production.model_copy(
            update={"password_hash_memory_kib": 1024, "password_hash_time_cost": 1}
        )
    )
    assert hashing.needs_rehash(cheap.hash("correct horse battery staple"))
