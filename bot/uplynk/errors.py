"""Typed Uplynk errors, each carrying a message fit to show a Slack user."""

from __future__ import annotations

from typing import Any

CREDENTIALS_HINT = "an administrator should check UPLYNK_USER_ID and UPLYNK_API_KEY"


class UplynkError(Exception):
    """Any failure of an Uplynk call; str(exc) is the user-facing message."""

    def __init__(
        self,
        user_message: str = "Uplynk returned an error",
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return self.user_message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.user_message!r}, status={self.status!r})"


class UplynkBadRequest(UplynkError):
    """400, or a v2 `{"error": 1}` answer: Uplynk rejected what was asked."""


class UplynkUnauthorized(UplynkError):
    """401: the bot's credentials (user id, API key, clock) were refused."""


class UplynkForbidden(UplynkError):
    """403: the bot's account may not touch that resource."""


class UplynkNotFound(UplynkError):
    """404: the library (or other resource) does not exist."""


class UplynkRateLimited(UplynkError):
    """429, still, after every retry."""


class UplynkUnavailable(UplynkError):
    """5xx after every retry, or Uplynk could not be reached."""


class UplynkTimeout(UplynkUnavailable):
    """Uplynk did not connect or answer within the configured timeout."""


def _times(attempts: int) -> str:
    return "once" if attempts == 1 else f"{attempts} times"


def _detail(body: Any) -> tuple[str | None, str | None]:
    """(code, short human text) from a v4 error body or a v2 {"error":1,"msg":...} body."""
    if not isinstance(body, dict):
        return None, None
    code = body.get("code") if isinstance(body.get("code"), str) else None
    text = None
    for key in ("title", "detail", "msg", "message"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())[:200]
            break
    return code, text


def error_for_status(
    status: int, body: Any = None, *, what: str = "resource", attempts: int = 1
) -> UplynkError:
    """Build the typed error for an HTTP error `status` (with its decoded JSON `body`, if any)."""
    code, text = _detail(body)
    suffix = f": {text}" if text else ""
    if status == 400:
        return UplynkBadRequest(
            f"Uplynk rejected the request (400){suffix}", status=status, code=code
        )
    if status == 401:
        return UplynkUnauthorized(
            f"Uplynk refused the bot's credentials (401) — {CREDENTIALS_HINT}",
            status=status,
            code=code,
        )
    if status == 403:
        return UplynkForbidden(
            f"Uplynk does not let the bot's account use that {what} (403)",
            status=status,
            code=code,
        )
    if status == 404:
        return UplynkNotFound(f"Uplynk could not find that {what} (404)", status=status, code=code)
    if status == 429:
        return UplynkRateLimited(
            f"Uplynk is rate-limiting the bot (429); tried {_times(attempts)}",
            status=status,
            code=code,
        )
    if status >= 500:
        return UplynkUnavailable(
            f"Uplynk is busy ({status}); tried {_times(attempts)}", status=status, code=code
        )
    return UplynkError(
        f"Uplynk answered with an error ({status}){suffix}", status=status, code=code
    )


def error_for_v2(body: dict[str, Any], *, status: int | None = None) -> UplynkError:
    """Build the typed error for a v2 `{"error": 1, "msg": ...}` answer."""
    _, text = _detail(body)
    text = text or "no reason given"
    lowered = text.lower()
    if any(word in lowered for word in ("signature", "unauthori", "authenticat", "owner")):
        return UplynkUnauthorized(
            f"Uplynk refused the bot's credentials ({text}) — {CREDENTIALS_HINT}",
            status=status,
            code="v2_error",
        )
    return UplynkBadRequest(f"Uplynk rejected the request: {text}", status=status, code="v2_error")
