"""KeyRing: real tokens, real keys, and the forgeries it must refuse.

No mocks: every token here is signed by python-jose or crafted byte by byte, and
the RSA/EC keys are generated with `cryptography` into PEM files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt
from pydantic import ValidationError

from app.core.config import Settings
from app.core.tokens import InvalidToken, KeyRing

TTL = timedelta(minutes=15)
ISSUER = "tracewire"
AUDIENCE = "tracewire-api"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `TRACEWIRE_*` variable from the outer environment leaks into Settings."""
    for name in list(os.environ):
        if name.upper().startswith("TRACEWIRE_"):
            monkeypatch.delenv(name)


def _secret() -> str:
    return secrets.token_urlsafe(48)


def _hs_key(kid: str, secret: str | None = None, alg: str = "HS256") -> dict[str, Any]:
    return {"kid": kid, "alg": alg, "secret": _secret() if secret is None else secret}


def _settings(keys: list[dict[str, Any]], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "jwt_keys": keys,
        "database_url": "sqlite+aiosqlite:///:memory:",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


def _ring(keys: list[dict[str, Any]], **overrides: Any) -> KeyRing:
    return KeyRing(_settings(keys, **overrides))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: object) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _full_claims(now: datetime | None = None, **extra: Any) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    return {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + TTL).timestamp()),
        "jti": uuid.uuid4().hex,
        **extra,
    }


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _rsa_files(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        _write_pem(directory / "rsa_private.pem", private),
        _write_pem(directory / "rsa_public.pem", public),
    )


def _ec_files(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        _write_pem(directory / "ec_private.pem", private),
        _write_pem(directory / "ec_public.pem", public),
    )


@pytest.fixture(scope="module")
def rsa_pems(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private, public) PEM files of a fresh 2048-bit RSA key."""
    return _rsa_files(tmp_path_factory.mktemp("rsa"))


@pytest.fixture(scope="module")
def ec_pems(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private, public) PEM files of a fresh P-256 key."""
    return _ec_files(tmp_path_factory.mktemp("ec"))


@pytest.fixture
def hs_key() -> dict[str, Any]:
    return _hs_key("k1")


@pytest.fixture
def ring(hs_key: dict[str, Any]) -> KeyRing:
    return _ring([hs_key])


# --------------------------------------------------------------------------- round trip


def test_signed_token_round_trips_with_registered_claims(ring: KeyRing) -> None:
    now = datetime.now(UTC)
    token = ring.sign({"sub": "user-1", "role": "admin"}, ttl=TTL, now=now)

    claims = ring.verify(token)

    assert claims["sub"] == "user-1"
    assert claims["role"] == "admin"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["iat"] == int(now.timestamp())
    assert claims["exp"] == int((now + TTL).timestamp())
    assert isinstance(claims["jti"], str) and claims["jti"]
    header = jwt.get_unverified_header(token)
    assert header["kid"] == "k1"
    assert header["alg"] == "HS256"


def test_sign_uses_the_active_kid_when_it_is_not_first() -> None:
    ring = _ring([_hs_key("old"), _hs_key("new")], jwt_active_kid="new")

    token = ring.sign({"sub": "user-1"}, ttl=TTL)

    assert jwt.get_unverified_header(token)["kid"] == "new"
    assert ring.verify(token)["sub"] == "user-1"


def test_each_token_gets_its_own_jti(ring: KeyRing) -> None:
    first = ring.verify(ring.sign({"sub": "u"}, ttl=TTL))
    second = ring.verify(ring.sign({"sub": "u"}, ttl=TTL))
    assert first["jti"] != second["jti"]


def test_caller_cannot_override_issuer_or_audience(ring: KeyRing) -> None:
    token = ring.sign({"sub": "u", "iss": "evil", "aud": "elsewhere"}, ttl=TTL)
    claims = ring.verify(token)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(ring: KeyRing, alg: str) -> None:
    header = _b64json({"alg": alg, "typ": "JWT", "kid": "k1"})
    payload = _b64json(_full_claims())
    token = f"{header}.{payload}."

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_token_signed_with_another_secret_is_refused(ring: KeyRing) -> None:
    forger = _ring([_hs_key("k1")])  # same kid, different secret
    token = forger.sign({"sub": "user-1"}, ttl=TTL)

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_tampered_payload_is_refused(ring: KeyRing) -> None:
    token = ring.sign({"sub": "user-1"}, ttl=TTL)
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64json(_full_claims(sub='admin'))}.{signature}"

    with pytest.raises(InvalidToken):
        ring.verify(forged)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithm_than_the_pinned_one_is_refused(
    ring: KeyRing, hs_key: dict[str, Any], alg: str
) -> None:
    # Right secret, right kid, but the key is pinned to HS256.
    token = jwt.encode(_full_claims(), hs_key["secret"], algorithm=alg, headers={"kid": "k1"})

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_algorithm_confusion_rsa_public_key_as_hmac_secret_is_refused(
    rsa_pems: tuple[Path, Path],
) -> None:
    private, public = rsa_pems
    ring = _ring(
        [{"kid": "rsa", "alg": "RS256", "private_key_file": private, "public_key_file": public}]
    )
    # python-jose itself refuses a PEM as an HMAC key, so the forgery is made by hand:
    # an HS256 token whose secret is the (public!) PEM, with the RS256 key's kid.
    header = _b64json({"alg": "HS256", "typ": "JWT", "kid": "rsa"})
    payload = _b64json(_full_claims())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(public.read_bytes(), signing_input, hashlib.sha256).digest()
    token = f"{header}.{payload}.{_b64url(signature)}"

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_expired_token_is_refused(ring: KeyRing) -> None:
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    token = ring.sign({"sub": "user-1"}, ttl=TTL, now=long_ago)

    with pytest.raises(InvalidToken):
        ring.verify(token)


@pytest.mark.parametrize(
    "other",
    [
        {"jwt_audience": "someone-else"},
        {"jwt_issuer": "someone-else"},
        {"jwt_issuer": "someone-else", "jwt_audience": "someone-else"},
    ],
    ids=["wrong-aud", "wrong-iss", "wrong-both"],
)
def test_token_for_another_issuer_or_audience_is_refused(
    ring: KeyRing, hs_key: dict[str, Any], other: dict[str, str]
) -> None:
    # Same key material: only the iss/aud claims differ.
    token = _ring([hs_key], **other).sign({"sub": "user-1"}, ttl=TTL)

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_audience_list_without_ours_is_refused(ring: KeyRing, hs_key: dict[str, Any]) -> None:
    claims = _full_claims(aud=["other-api", "third-api"])
    token = jwt.encode(claims, hs_key["secret"], algorithm="HS256", headers={"kid": "k1"})

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_unknown_kid_is_refused(ring: KeyRing) -> None:
    token = _ring([_hs_key("stranger")]).sign({"sub": "user-1"}, ttl=TTL)

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_missing_kid_is_refused(ring: KeyRing, hs_key: dict[str, Any]) -> None:
    token = jwt.encode(_full_claims(), hs_key["secret"], algorithm="HS256")
    assert "kid" not in jwt.get_unverified_header(token)

    with pytest.raises(InvalidToken):
        ring.verify(token)


@pytest.mark.parametrize("kid", [1, None, ["k1"], {"kid": "k1"}, ""])
def test_non_string_or_empty_kid_is_refused(
    ring: KeyRing, hs_key: dict[str, Any], kid: object
) -> None:
    token = jwt.encode(_full_claims(), hs_key["secret"], algorithm="HS256", headers={"kid": kid})

    with pytest.raises(InvalidToken):
        ring.verify(token)


@pytest.mark.parametrize("claim", ["exp", "sub", "iat", "iss", "aud", "jti"])
def test_missing_required_claim_is_refused(
    ring: KeyRing, hs_key: dict[str, Any], claim: str
) -> None:
    claims = _full_claims()
    del claims[claim]
    token = jwt.encode(claims, hs_key["secret"], algorithm="HS256", headers={"kid": "k1"})

    with pytest.raises(InvalidToken):
        ring.verify(token)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", None),
        ("sub", 42),
        ("jti", None),
        ("jti", 7),
        ("iss", None),
        ("aud", None),
        ("exp", "soon"),
        ("iat", "123"),
        ("iat", "yesterday"),
    ],
)
def test_required_claim_of_the_wrong_type_is_refused(
    ring: KeyRing, hs_key: dict[str, Any], claim: str, value: object
) -> None:
    token = jwt.encode(
        _full_claims(**{claim: value}), hs_key["secret"], algorithm="HS256", headers={"kid": "k1"}
    )

    with pytest.raises(InvalidToken):
        ring.verify(token)


# python-jose checks time claims with int() and lets TypeError/OverflowError escape;
# KeyRing.verify must still turn a signed `"exp": null` into InvalidToken.
@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", None), ("iat", None), ("exp", [1]), ("iat", {}), ("nbf", None), ("exp", 1e400)],
)
def test_null_or_structured_time_claim_is_refused(
    ring: KeyRing, hs_key: dict[str, Any], claim: str, value: object
) -> None:
    claims = _full_claims(**{claim: value})
    token = jwt.encode(claims, hs_key["secret"], algorithm="HS256", headers={"kid": "k1"})

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_iat_in_the_future_beyond_leeway_is_refused(ring: KeyRing) -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    token = ring.sign({"sub": "user-1"}, ttl=TTL, now=future)

    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_iat_in_the_future_within_leeway_is_accepted(ring: KeyRing) -> None:
    assert ring.leeway >= 10
    soon = datetime.now(UTC) + timedelta(seconds=ring.leeway // 2)
    token = ring.sign({"sub": "user-1"}, ttl=TTL, now=soon)

    assert ring.verify(token)["sub"] == "user-1"


def test_not_yet_valid_nbf_is_refused(ring: KeyRing, hs_key: dict[str, Any]) -> None:
    claims = _full_claims(nbf=int((datetime.now(UTC) + timedelta(hours=1)).timestamp()))
    token = jwt.encode(claims, hs_key["secret"], algorithm="HS256", headers={"kid": "k1"})

    with pytest.raises(InvalidToken):
        ring.verify(token)


@pytest.mark.parametrize(
    "extra",
    [
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"jwk": {"kty": "oct", "k": "AAAA"}},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
    ],
    ids=["jku", "x5u", "jwk", "x5c", "crit"],
)
def test_header_pointing_at_outside_keys_is_refused(
    ring: KeyRing, hs_key: dict[str, Any], extra: dict[str, object]
) -> None:
    # Otherwise perfectly signed with the right key: the header alone must sink it.
    token = jwt.encode(
        _full_claims(), hs_key["secret"], algorithm="HS256", headers={"kid": "k1", **extra}
    )

    with pytest.raises(InvalidToken):
        ring.verify(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        " ",
        "garbage",
        "a.b",
        "a.b.c",
        "....",
        "Bearer abc.def.ghi",
        "!!!.@@@.###",
        "é.ü.ß",
        f"{_b64url(b'not json')}.{_b64json({'sub': 'x'})}.",
        f"{_b64json([1, 2])}.{_b64json({'sub': 'x'})}.",
        f"{_b64json('HS256')}.{_b64json({'sub': 'x'})}.",
        f"{_b64url(bytes([0xFF, 0xFE]))}.{_b64json({'sub': 'x'})}.",
        f"{_b64json({'alg': 'HS256', 'kid': 'k1'})}.{_b64url(b'not json')}.sig",
        f"{_b64json({'alg': 'HS256', 'kid': 'k1'})}.{_b64json([1])}.sig",
        f"{_b64json({'alg': 'HS256', 'kid': 'k1'})}",
    ],
)
def test_garbage_is_refused(ring: KeyRing, token: str) -> None:
    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_valid_token_signature_on_garbage_payload_is_refused(
    ring: KeyRing, hs_key: dict[str, Any]
) -> None:
    # Correctly signed, but the payload is a JSON array, not a claims object.
    header = _b64json({"alg": "HS256", "typ": "JWT", "kid": "k1"})
    payload = _b64json([_full_claims()])
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(hs_key["secret"].encode(), signing_input, hashlib.sha256).digest()

    with pytest.raises(InvalidToken):
        ring.verify(f"{header}.{payload}.{_b64url(signature)}")


# --------------------------------------------------------------------------- rotation


def test_rotation_keeps_tokens_of_the_old_key_valid() -> None:
    old = _hs_key("2024-01")
    new = _hs_key("2025-01")
    token = _ring([old]).sign({"sub": "user-1"}, ttl=TTL)

    rotated = _ring([new, old])

    assert jwt.get_unverified_header(rotated.sign({"sub": "u"}, ttl=TTL))["kid"] == "2025-01"
    assert rotated.verify(token)["sub"] == "user-1"


def test_dropping_the_old_key_refuses_its_tokens() -> None:
    old = _hs_key("2024-01")
    new = _hs_key("2025-01")
    token = _ring([old]).sign({"sub": "user-1"}, ttl=TTL)

    with pytest.raises(InvalidToken):
        _ring([new]).verify(token)


def test_old_kid_with_new_secret_refuses_old_tokens() -> None:
    token = _ring([_hs_key("k1")]).sign({"sub": "user-1"}, ttl=TTL)

    with pytest.raises(InvalidToken):
        _ring([_hs_key("k1")]).verify(token)


# --------------------------------------------------------------------------- RS256 / ES256


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_asymmetric_ring_signs_and_verifies(
    alg: str, rsa_pems: tuple[Path, Path], ec_pems: tuple[Path, Path]
) -> None:
    private, public = rsa_pems if alg == "RS256" else ec_pems
    ring = _ring(
        [{"kid": "asym", "alg": alg, "private_key_file": private, "public_key_file": public}]
    )

    token = ring.sign({"sub": "user-1"}, ttl=TTL)

    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": "asym", "typ": "JWT"}
    assert ring.verify(token)["sub"] == "user-1"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_public_key_only_entry_verifies_tokens_of_the_signer(
    alg: str, rsa_pems: tuple[Path, Path], ec_pems: tuple[Path, Path]
) -> None:
    private, public = rsa_pems if alg == "RS256" else ec_pems
    signer = _ring(
        [{"kid": "asym", "alg": alg, "private_key_file": private, "public_key_file": public}]
    )
    verifier = _ring([_hs_key("hs"), {"kid": "asym", "alg": alg, "public_key_file": public}])
    token = signer.sign({"sub": "user-1"}, ttl=TTL)

    assert verifier.verify(token)["sub"] == "user-1"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_asymmetric_token_from_another_key_pair_is_refused(
    alg: str, rsa_pems: tuple[Path, Path], ec_pems: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = rsa_pems if alg == "RS256" else ec_pems
    other_private, other_public = (_rsa_files if alg == "RS256" else _ec_files)(tmp_path)
    ring = _ring(
        [{"kid": "asym", "alg": alg, "private_key_file": private, "public_key_file": public}]
    )
    forger = _ring(
        [
            {
                "kid": "asym",
                "alg": alg,
                "private_key_file": other_private,
                "public_key_file": other_public,
            }
        ]
    )

    with pytest.raises(InvalidToken):
        ring.verify(forger.sign({"sub": "user-1"}, ttl=TTL))


def test_es256_token_presented_for_an_rs256_kid_is_refused(
    rsa_pems: tuple[Path, Path], ec_pems: tuple[Path, Path]
) -> None:
    rsa_private, rsa_public = rsa_pems
    ec_private, _ = ec_pems
    rsa_key = {
        "kid": "rsa",
        "alg": "RS256",
        "private_key_file": rsa_private,
        "public_key_file": rsa_public,
    }
    ring = _ring([rsa_key])
    token = jwt.encode(
        _full_claims(), ec_private.read_text(), algorithm="ES256", headers={"kid": "rsa"}
    )

    with pytest.raises(InvalidToken):
        ring.verify(token)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_active_asymmetric_key_without_private_key_is_refused(
    alg: str, rsa_pems: tuple[Path, Path], ec_pems: tuple[Path, Path]
) -> None:
    _, public = rsa_pems if alg == "RS256" else ec_pems

    with pytest.raises(ValidationError, match="private_key_file"):
        _settings([{"kid": "asym", "alg": alg, "public_key_file": public}])


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_asymmetric_key_without_public_key_is_refused(
    alg: str, rsa_pems: tuple[Path, Path], ec_pems: tuple[Path, Path]
) -> None:
    private, _ = rsa_pems if alg == "RS256" else ec_pems

    with pytest.raises(ValidationError, match="public_key_file"):
        _settings([{"kid": "asym", "alg": alg, "private_key_file": private}])


# --------------------------------------------------------------------------- Settings


@pytest.mark.parametrize("environment", ["dev", "test", "prod"])
@pytest.mark.parametrize("length", [0, 1, 16, 31])
def test_short_hmac_secret_is_refused(environment: str, length: int) -> None:
    with pytest.raises(ValidationError):
        _settings([_hs_key("k1", secret="s" * length)], environment=environment)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_secret_of_exactly_32_bytes_is_accepted(alg: str) -> None:
    ring = _ring([_hs_key("k1", secret=secrets.token_hex(16), alg=alg)])
    assert ring.verify(ring.sign({"sub": "u"}, ttl=TTL))["sub"] == "u"


def test_secret_length_is_counted_in_bytes_not_characters() -> None:
    secret = "é" * 16  # 16 characters, 32 bytes in UTF-8
    assert len(secret) < 32 <= len(secret.encode())
    _settings([_hs_key("k1", secret=secret)])


def test_short_jwt_secret_shorthand_is_refused() -> None:
    with pytest.raises(ValidationError):
        _settings([], jwt_secret="too-short")


@pytest.mark.parametrize("environment", ["dev", "test", "prod"])
@pytest.mark.parametrize(
    "secret",
    [
        "please-change-me-" + "x" * 32,
        "PLEASE-CHANGE-ME-" + "x" * 32,
        "changeme" + "x" * 32,
        "placeholder" + "x" * 32,
        "dev-only-insecure-jwt-secret-change-me-0000",
    ],
)
def test_placeholder_secret_is_refused_in_every_environment(environment: str, secret: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        _settings([_hs_key("k1", secret=secret)], environment=environment)


@pytest.mark.parametrize("environment", ["dev", "test", "prod"])
def test_placeholder_in_a_non_active_key_is_refused(environment: str) -> None:
    keys = [_hs_key("new"), _hs_key("old", secret="change-me-" + "x" * 32)]
    with pytest.raises(ValidationError, match="placeholder"):
        _settings(keys, environment=environment)


def test_no_secret_in_prod_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="required in prod"):
        _settings([], environment="prod", data_dir=tmp_path)
    assert not (tmp_path / "jwt-secret").exists()


@pytest.mark.parametrize("environment", ["dev", "test"])
def test_no_secret_generates_one_into_the_data_directory(environment: str, tmp_path: Path) -> None:
    settings = _settings([], environment=environment, data_dir=tmp_path / "data")
    secret_file = tmp_path / "data" / "jwt-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 48 and settings.jwt_keys[0].secret.get_secret_value() == secret
    ring = KeyRing(settings)
    token = ring.sign({"sub": "u"}, ttl=TTL)
    # The next start reads the same secret: tokens issued before it still verify.
    again = KeyRing(_settings([], environment=environment, data_dir=tmp_path / "data"))
    assert again.verify(token)["sub"] == "u"
    with pytest.raises(InvalidToken):  # and the old published constant signs nothing
        again.verify(
            jwt.encode(
                _full_claims(),
                "dev-only-insecure-jwt-secret-change-me-0000",
                algorithm="HS256",
                headers={"kid": "default"},
            )
        )


def test_duplicate_kids_are_refused() -> None:
    with pytest.raises(ValidationError, match="unique"):
        _settings([_hs_key("k1"), _hs_key("k1")])


def test_active_kid_not_in_ring_is_refused() -> None:
    with pytest.raises(ValidationError):
        _settings([_hs_key("k1")], jwt_active_kid="k2")
