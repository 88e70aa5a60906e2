"""Standard Webhooks signing: known answers, and the receivers' own library verifies us."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.webhooks import signing

BODY = json.dumps({"type": "alert.published", "data": {"id": "a1", "note": "café"}}).encode()
MSG_ID = "msg_2c8e0f0a4b7d4c1e9f3a5b6c7d8e9f00"


def now() -> int:
    return int(time.time())


def test_new_secret_is_whsec_with_32_random_bytes():
    first, second = signing.new_webhook_secret(), signing.new_webhook_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_sign_matches_an_independent_hmac():
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = hmac.new(key, f"{MSG_ID}.1700000000.".encode() + BODY, hashlib.sha256).digest()
    assert signing.sign(secret, MSG_ID, 1700000000, BODY) == (
        "v1," + base64.b64encode(expected).decode()
    )


def test_sign_matches_the_spec_example():
    # The example published with the Standard Webhooks specification.
    signature = signing.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    "secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_"]
)
def test_sign_refuses_malformed_secrets(secret):
    with pytest.raises(ValueError):
        signing.sign(secret, MSG_ID, now(), BODY)


def test_signature_header_needs_a_secret():
    with pytest.raises(ValueError):
        signing.signature_header([], MSG_ID, now(), BODY)


def test_headers_carry_id_timestamp_signature_and_content_type():
    secret, ts = signing.new_webhook_secret(), now()
    assert signing.headers([secret], MSG_ID, ts, BODY) == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(ts),
        "webhook-signature": signing.sign(secret, MSG_ID, ts, BODY),
        "content-type": "application/json",
    }


def test_library_verifies_one_secret():
    secret = signing.new_webhook_secret()
    headers = signing.headers([secret], MSG_ID, now(), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_rotation_header_has_two_signatures_each_secret_verifies_alone():
    new, old = signing.new_webhook_secret(), signing.new_webhook_secret()
    headers = signing.headers([new, old], MSG_ID, now(), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_webhook_secret()).verify(BODY, headers)


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "old timestamp", "future"])
def test_library_refuses(case):
    secret = signing.new_webhook_secret()
    ts = {"old timestamp": now() - 600, "future": now() + 600}.get(case, now())
    headers = signing.headers([secret], MSG_ID, ts, BODY)
    body = BODY.replace(b"a1", b"a2") if case == "tampered body" else BODY
    verifier = Webhook(signing.new_webhook_secret() if case == "wrong secret" else secret)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body, headers)


def test_library_refuses_a_malformed_signature_header():
    # DESIGN §11: receivers must catch ValueError as well as WebhookVerificationError: the
    # library raised ValueError for a malformed header before 1.3.0, and raises
    # WebhookVerificationError since. Either way the message is refused.
    secret = signing.new_webhook_secret()
    headers = signing.headers([secret], MSG_ID, now(), BODY) | {"webhook-signature": "garbage"}
    with pytest.raises((ValueError, WebhookVerificationError)):
        Webhook(secret).verify(BODY, headers)


def test_message_id_is_stable_per_delivery():
    delivery = uuid.uuid4()
    assert signing.message_id(delivery) == signing.message_id(delivery)
    assert re.fullmatch(r"msg_[0-9a-f]{32}", signing.message_id(delivery))
    assert signing.message_id(delivery) != signing.message_id(uuid.uuid4())
