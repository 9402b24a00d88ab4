"""msg/sig signing: a hand-derived vector, decoding back, and verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib

import pytest

from bot.uplynk.signing import decode_msg, sign, verify

USER = "5a1c0ffee5a1c0ffee5a1c0ffee5a1c0"
KEY = "s3cret-key-ünïcode"
TS = 1_700_000_000


def expected_pair(payload: dict, key: str) -> tuple[str, str]:
    raw = json.dumps(payload).encode("utf-8")
    msg = base64.b64encode(zlib.compress(raw, 9)).decode("ascii")
    sig = hmac.new(key.encode("utf-8"), msg.encode("ascii"), hashlib.sha256).hexdigest()
    return msg, sig


def test_fixed_vector_matches_an_independent_derivation():
    msg, sig = expected_pair({"_owner": USER, "_timestamp": TS}, KEY)
    assert sign({}, USER, KEY, timestamp=TS) == {"msg": msg, "sig": sig}
    assert len(sig) == 64 and sig == sig.lower()
    assert msg.endswith("=") or len(msg) % 4 == 0  # standard, padded base64


def test_v2_params_travel_inside_msg_beside_owner_and_timestamp():
    params = {"ids": ["aa", "bb"]}
    msg, sig = expected_pair({"_owner": USER, "_timestamp": TS, **params}, KEY)
    signed = sign(params, USER, KEY, timestamp=TS)
    assert signed == {"msg": msg, "sig": sig}
    assert decode_msg(signed["msg"]) == {"_owner": USER, "_timestamp": TS, "ids": ["aa", "bb"]}


def test_timestamp_defaults_to_now_as_an_int(monkeypatch):
    monkeypatch.setattr("time.time", lambda: 1_700_000_123.9)
    payload = decode_msg(sign({}, USER, KEY)["msg"])
    assert payload["_timestamp"] == 1_700_000_123
    assert isinstance(payload["_timestamp"], int)


def test_verify_accepts_the_right_key_only():
    signed = sign({}, USER, KEY, timestamp=TS)
    assert verify(signed["msg"], signed["sig"], KEY)
    assert not verify(signed["msg"], signed["sig"], KEY + "x")
    assert not verify(signed["msg"], "0" * 64, KEY)
    assert not verify(signed["msg"], "not hex ✗", KEY)


@pytest.mark.parametrize(
    "bad",
    [
        "not base64!!",
        base64.b64encode(b"not zlib").decode(),
        base64.b64encode(zlib.compress(b"not json")).decode(),
        base64.b64encode(zlib.compress(b"[1, 2]")).decode(),
    ],
)
def test_decode_msg_rejects_garbage(bad):
    with pytest.raises(ValueError):
        decode_msg(bad)


def test_decode_msg_refuses_a_zip_bomb():
    bomb = base64.b64encode(zlib.compress(b'{"a": "' + b"x" * 20_000_000 + b'"}', 9)).decode()
    with pytest.raises(ValueError):
        decode_msg(bomb)
