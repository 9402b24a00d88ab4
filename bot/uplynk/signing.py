"""The msg/sig query parameters that authenticate every Uplynk API call (docs/SPEC.md §1)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import zlib
from typing import Any

# A signed msg never needs to inflate to more than this; refuse zip bombs.
MAX_DECODED_BYTES = 4 * 1024 * 1024


def sign(
    params: dict[str, Any] | None,
    user_id: str,
    api_key: str,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Return {"msg": ..., "sig": ...} for `params` signed as `user_id` with `api_key`."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    payload = {"_owner": user_id, "_timestamp": ts, **(params or {})}
    raw = json.dumps(payload).encode("utf-8")
    msg = base64.b64encode(zlib.compress(raw, 9)).decode("ascii")
    return {"msg": msg, "sig": _hmac_hex(msg, api_key)}


def decode_msg(msg: str) -> dict[str, Any]:
    """Decode a msg parameter back into its JSON object; raise ValueError if it is not one."""
    try:
        compressed = base64.b64decode(msg.encode("ascii"), validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(compressed, MAX_DECODED_BYTES)
        if inflater.unconsumed_tail:
            raise ValueError("msg is too large once decompressed")
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeError, binascii.Error, zlib.error, json.JSONDecodeError) as exc:
        raise ValueError(f"msg is not base64 zlib-compressed JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("msg does not hold a JSON object")
    return payload


def verify(msg: str, sig: str, api_key: str) -> bool:
    """True when `sig` is the HMAC-SHA256 of `msg` under `api_key` (constant-time compare)."""
    try:
        expected = _hmac_hex(msg, api_key)
    except UnicodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), sig.lower().encode("ascii", "replace"))


def _hmac_hex(msg: str, api_key: str) -> str:
    return hmac.new(api_key.encode("utf-8"), msg.encode("ascii"), hashlib.sha256).hexdigest()
