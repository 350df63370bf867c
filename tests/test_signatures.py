"""Every signature scheme against the shared test vectors (tests/data/signatures.json)."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import load_json
from web.signatures import (
    BattleMetricsScheme,
    PlainHexScheme,
    Sha256Scheme,
    SignatureError,
    mac_digest,
    parse_iso_timestamp,
)

VECTORS = load_json("signatures.json")


def _now_for(timestamp: str) -> datetime:
    return parse_iso_timestamp(timestamp)


@pytest.mark.parametrize(
    "vector", VECTORS["battlemetrics"]["valid"], ids=lambda v: v["secret"][:12]
)
def test_battlemetrics_valid_vectors(vector: dict[str, str]) -> None:
    body = bytes.fromhex(vector["body_hex"])
    headers = {"X-Signature": vector["header"]}
    verified = BattleMetricsScheme(300).verify(
        headers, body, [vector["secret"]], _now_for(vector["timestamp"])
    )
    assert verified.signed_at_text == vector["timestamp"]
    assert BattleMetricsScheme.sign(vector["secret"], body, vector["timestamp"]) == vector["header"]


@pytest.mark.parametrize("vector", VECTORS["battlemetrics"]["invalid"], ids=lambda v: v["why"])
def test_battlemetrics_invalid_vectors(vector: dict[str, str]) -> None:
    body = bytes.fromhex(vector["body_hex"])
    with pytest.raises(SignatureError, match="does not match"):
        BattleMetricsScheme(300).verify(
            {"X-Signature": vector["header"]},
            body,
            [vector["secret"]],
            _now_for(vector["timestamp"]),
        )


def test_battlemetrics_known_answer_vector_is_utf8_secret_not_hex() -> None:
    vector = load_json("battlemetrics/x-signature-test-vector.json")
    expected = hmac.new(
        vector["secret"].encode(), vector["signed_message"].encode(), hashlib.sha256
    ).hexdigest()
    assert expected == vector["signature_hex"]
    header = vector["header"].split(": ", 1)[1]
    BattleMetricsScheme(300).verify(
        {"X-Signature": header},
        vector["body"].encode(),
        [vector["secret"]],
        _now_for(vector["timestamp"]),
    )


def test_battlemetrics_tolerance_uses_injected_now() -> None:
    vector = VECTORS["battlemetrics"]["valid"][1]
    body = bytes.fromhex(vector["body_hex"])
    scheme = BattleMetricsScheme(300)
    signed = _now_for(vector["timestamp"])
    scheme.verify(
        {"X-Signature": vector["header"]}, body, [vector["secret"]], signed + timedelta(seconds=300)
    )
    scheme.verify(
        {"X-Signature": vector["header"]}, body, [vector["secret"]], signed - timedelta(seconds=300)
    )
    for skew in (301, -301):
        with pytest.raises(SignatureError, match="clock skew"):
            scheme.verify(
                {"X-Signature": vector["header"]},
                body,
                [vector["secret"]],
                signed + timedelta(seconds=skew),
            )


@pytest.mark.parametrize(
    "header",
    [
        "",
        "s=abc",
        "t=2025-03-01T12:00:00.000Z",
        "t=2025-03-01T12:00:00.000Z,s=nothex",
        "t=not-a-time,s=" + "0" * 64,
        "t=2025-03-01T12:00:00,s=" + "0" * 64,  # no timezone
        "t=2025-03-01T12:00:00.000Z,t=2025-03-01T12:00:00.000Z,s=" + "0" * 64,
        "x" * 600,
    ],
)
def test_battlemetrics_malformed_headers(header: str) -> None:
    with pytest.raises(SignatureError):
        BattleMetricsScheme(300).verify(
            {"X-Signature": header}, b"{}", ["k"], datetime(2025, 3, 1, 12, tzinfo=UTC)
        )


def test_missing_header_is_rejected() -> None:
    for scheme in (BattleMetricsScheme(300), Sha256Scheme(300), PlainHexScheme()):
        with pytest.raises(SignatureError, match="missing"):
            scheme.verify({}, b"{}", ["k"], datetime(2025, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "vector", VECTORS["sha256_prefixed"]["valid"], ids=lambda v: v["secret"][:12]
)
def test_sha256_prefixed_vectors(vector: dict[str, str]) -> None:
    body = bytes.fromhex(vector["body_hex"])
    Sha256Scheme(300).verify(
        {"X-Signature": vector["header"]}, body, [vector["secret"]], datetime.now(UTC)
    )
    assert Sha256Scheme.sign(vector["secret"], body) == vector["header"]
    with pytest.raises(SignatureError):
        Sha256Scheme(300).verify(
            {"X-Signature": vector["header"]}, body + b" ", [vector["secret"]], datetime.now(UTC)
        )


def test_sha256_with_timestamp_signs_timestamp_and_checks_tolerance() -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    stamp = str(int(now.timestamp()))
    body = b'{"type":"session.started"}'
    header = Sha256Scheme.sign("s3cret", body, stamp)
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    scheme = Sha256Scheme(300)
    verified = scheme.verify({"X-Signature": header, "X-Timestamp": stamp}, body, ["s3cret"], now)
    assert verified.signed_at == now
    # Without the timestamp header the same signature is over the body alone: mismatch.
    with pytest.raises(SignatureError, match="does not match"):
        scheme.verify({"X-Signature": header}, body, ["s3cret"], now)
    with pytest.raises(SignatureError, match="clock skew"):
        scheme.verify(
            {"X-Signature": header, "X-Timestamp": stamp},
            body,
            ["s3cret"],
            now + timedelta(seconds=301),
        )
    with pytest.raises(SignatureError, match="Unix seconds"):
        scheme.verify({"X-Signature": header, "X-Timestamp": "2025-03-01"}, body, ["s3cret"], now)


@pytest.mark.parametrize("vector", VECTORS["plain_hex"]["valid"])
def test_plain_hex_vectors(vector: dict[str, str]) -> None:
    body = bytes.fromhex(vector["body_hex"])
    PlainHexScheme().verify(
        {"X-SIGNATURE": vector["header"]}, body, [vector["secret"]], datetime.now(UTC)
    )
    PlainHexScheme().verify(
        {"X-SIGNATURE": vector["header"].upper()}, body, [vector["secret"]], datetime.now(UTC)
    )
    with pytest.raises(SignatureError):
        PlainHexScheme().verify(
            {"X-SIGNATURE": "sha256=" + vector["header"]},
            body,
            [vector["secret"]],
            datetime.now(UTC),
        )


def test_any_of_several_secrets_verifies() -> None:
    body = b"{}"
    header = PlainHexScheme.sign("new", body)
    PlainHexScheme().verify({"X-SIGNATURE": header}, body, ["old", "new"], datetime.now(UTC))
    with pytest.raises(SignatureError):
        PlainHexScheme().verify({"X-SIGNATURE": header}, body, ["old"], datetime.now(UTC))


def test_mac_digest_equals_hmac_for_every_key_length() -> None:
    # Keys shorter than, equal to and longer than SHA-256's 64-byte block (hashed first, as in
    # RFC 2104), multi-byte UTF-8, and repeated use of the cached keyed states.
    rng = random.Random(2104)
    for length in (*range(0, 70), 100, 128, 129, 500):
        secret = "".join(rng.choice("aZ9-_é€😀") for _ in range(length))
        for size in (0, 1, 63, 64, 65, 1000):
            message = rng.randbytes(size)
            for _ in range(2):
                expected = hmac.digest(secret.encode("utf-8"), message, "sha256")
                assert mac_digest(secret, message) == expected
