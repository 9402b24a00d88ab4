"""The Uplynk API client (Slack-free): signing, typed errors, models, UplynkClient."""

from bot.uplynk.client import UplynkClient
from bot.uplynk.errors import (
    UplynkBadRequest,
    UplynkError,
    UplynkForbidden,
    UplynkNotFound,
    UplynkRateLimited,
    UplynkTimeout,
    UplynkUnauthorized,
    UplynkUnavailable,
)
from bot.uplynk.models import Asset, BatchResult, BulkResult, Library
from bot.uplynk.signing import decode_msg, sign, verify

__all__ = [
    "Asset",
    "BatchResult",
    "BulkResult",
    "Library",
    "UplynkBadRequest",
    "UplynkClient",
    "UplynkError",
    "UplynkForbidden",
    "UplynkNotFound",
    "UplynkRateLimited",
    "UplynkTimeout",
    "UplynkUnauthorized",
    "UplynkUnavailable",
    "decode_msg",
    "sign",
    "verify",
]
