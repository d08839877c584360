"""The answers of POST /auth other than a token, each carrying its status (contract §1.1: 400
and 401; issue 6: 429 and 503). login.py renders them as `{"errors": [...]}` in
`application/json`, with `Retry-After` when the client may try again later."""

from __future__ import annotations

from typing import Any


class LoginRefused(Exception):
    status = 401
    title = "Authentication failed"

    def __init__(self, detail: str, retry_after: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after

    def document(self) -> dict[str, Any]:
        code = str(self.status)
        error = {"title": self.title, "detail": self.detail, "code": code, "status": code}
        return {"errors": [error]}


class AuthenticationFailed(LoginRefused):
    pass


class BadRequest(LoginRefused):
    status = 400
    title = "Bad Request"


class TooManyFailures(LoginRefused):
    """The username or the client's address failed too often in the current window."""

    status = 429
    title = "Too Many Requests"

    def __init__(self, retry_after: int, scope: str = "username"):
        super().__init__("Too many failed login attempts. Try again later.", retry_after)
        # whose limit was reached, `username` or `address` (for the metrics, never the answer)
        self.scope = scope


class Overloaded(LoginRefused):
    """Every password-check slot of this worker is taken and its queue is full."""

    status = 503
    title = "Service Unavailable"

    def __init__(self) -> None:
        super().__init__("Too many logins are being checked. Try again shortly.", retry_after=1)
