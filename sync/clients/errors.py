"""One taxonomy for every failure either API can give, whatever SDK exception carried it.

Jobs decide what to do from the class alone: RateLimited → re-enqueue at
`retry_after`; Transient → retry with backoff; Unauthorized → refresh once,
then "needs reconnect"; the rest are record-level failures with the remote
code and message kept for the health pages.
"""

from __future__ import annotations


class ApiError(Exception):
    """A failed call to HubSpot or QuickBooks."""

    def __init__(
        self, side: str, message: str, *, status: int | None = None, code: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(f"{side}: {message}")
        self.side, self.message, self.status, self.code, self.detail = side, message, status, code, detail


class RateLimited(ApiError):
    """Too many requests: try again after `retry_after` seconds (from the remote, or our own limiter)."""

    def __init__(self, side: str, message: str, retry_after: float, **kwargs) -> None:
        super().__init__(side, message, **kwargs)
        self.retry_after = retry_after


class Unauthorized(ApiError):
    """The token was refused (expired, revoked, app uninstalled, company disconnected)."""


class NotFound(ApiError):
    """The record does not exist (or, in QBO, is inactive where an active one was needed)."""


class StaleObject(ApiError):
    """QBO's SyncToken moved on (5010): read again, plan again, write again."""


class Duplicate(ApiError):
    """A unique value is taken: HubSpot 409, QBO 6240 / 6140."""


class ValidationFailed(ApiError):
    """The remote refused the content; `code` and `detail` say why."""


class Transient(ApiError):
    """A 5xx, a timeout or a dropped connection: the same call may succeed later."""


class NeedsReconnect(Exception):
    """A refresh failed for good: the user must connect again. The connection is marked so."""
