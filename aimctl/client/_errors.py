"""Typed errors: API errors built from the server's Status object, and transport failures.

::

    ClientError                      anything this package raises about a request
    ├── ApiError                     the server answered with an error Status
    │   │                            (.status .reason .message .details)
    │   ├── BadRequest        400
    │   ├── Unauthorized      401
    │   ├── Forbidden         403
    │   ├── NotFound          404
    │   ├── Conflict          409    (reason "Conflict": stale resourceVersion)
    │   │   └── AlreadyExists 409    (reason "AlreadyExists": create of an existing name)
    │   ├── Gone              410    (reason "Expired"/"Gone": resourceVersion compacted; relist)
    │   ├── Invalid           422
    │   ├── TooManyRequests   429    (.retry_after from the Retry-After header or details)
    │   └── ServerError       5xx    (.retry_after, when the server asked for a wait)
    └── TransportError               no usable answer: connection refused/reset, TLS, timeout,
        │                            truncated body (.request_sent: may the server have seen it?)
        └── WatchStalled             a watch that sent nothing (not even a bookmark) for too long

    UnknownNamespace (LookupError)   a cached read of a namespace the cache does not watch

Watch ``ERROR`` events carry a Status too and raise the same classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnknownNamespace",
    "WatchStalled",
    "api_error_from_status",
]


class ClientError(Exception):
    """Base of every error about a request to the API server."""


class TransportError(ClientError):
    """The request got no usable HTTP answer (connection, TLS, timeout, truncated body).

    The underlying exception (usually an ``aiohttp.ClientError`` or ``TimeoutError``) is the
    ``__cause__``. Worth retrying with backoff when the request is idempotent, or when
    ``request_sent`` is False.

    Attributes:
        request_sent: False only when the request certainly never reached the server (the
            connection could not be opened); True when it may have been processed and only
            the answer was lost, so resending a non-idempotent write could apply it twice.
    """

    def __init__(self, message: str = "", *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class WatchStalled(TransportError):
    """A watch stream sent nothing, not even a bookmark, within its inactivity deadline."""


class ApiError(ClientError):
    """The server answered with an error Status.

    Attributes:
        status: HTTP status code (or the Status ``code`` of a watch ERROR event).
        reason: machine-readable Status reason, e.g. ``"NotFound"``, ``"Expired"``; may be "".
        message: the server's human-readable message.
        details: the Status ``details`` (name, group, kind, causes, retryAfterSeconds) or None.
        method, path: the request that failed, when known (for error messages).
        retry_after: seconds the server asked to wait (``Retry-After`` or
            ``details.retryAfterSeconds``), when it said so; read for 429 and 5xx.
    """

    def __init__(
        self,
        status: int,
        reason: str = "",
        message: str = "",
        details: dict[str, Any] | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.reason = reason
        self.message = message
        self.details = details
        self.method = method
        self.path = path
        where = f" ({method} {path})" if method and path else ""
        head = f"{status} {reason}" if reason else str(status)
        super().__init__(f"{head}: {message}{where}")


class BadRequest(ApiError):
    """400: the request is malformed (e.g. an unknown query parameter value)."""


class Unauthorized(ApiError):
    """401: credentials missing, expired or rejected."""


class Forbidden(ApiError):
    """403: authenticated but RBAC (or admission) denies the verb on the resource."""


class NotFound(ApiError):
    """404: the object, namespace or resource type does not exist."""


class Conflict(ApiError):
    """409: an update with a stale resourceVersion, or (subclass) a create of an existing name."""


class AlreadyExists(Conflict):
    """409 with reason ``AlreadyExists``."""


class Gone(ApiError):
    """410: the requested resourceVersion (or continue token) is too old; list again."""


class Invalid(ApiError):
    """422: the object failed validation; ``details["causes"]`` names the fields."""


class TooManyRequests(ApiError):
    """429: throttled by API Priority and Fairness (or a 429 from an aggregated server)."""


class ServerError(ApiError):
    """5xx: the server (or etcd behind it) failed; retry idempotent requests with backoff."""


class UnknownNamespace(LookupError):
    """A cached read named a namespace the cache does not watch (the manager was given
    ``namespaces=[...]``), so "not in the cache" would not mean "does not exist".

    Read it live (``Client.get_live``), or watch that namespace too. Not an ``ApiError``: no
    request was made.
    """

    def __init__(self, what: str, namespace: str, watched: Sequence[str]) -> None:
        self.namespace = namespace
        self.watched = tuple(watched)
        super().__init__(
            f"unable to read {what}: unknown namespace {namespace!r} for the cache "
            f"(it watches {', '.join(sorted(watched))})"
        )


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def api_error_from_status(
    status: int,
    body: Any,
    *,
    method: str | None = None,
    path: str | None = None,
    retry_after_header: str | None = None,
) -> ApiError:
    """Build the typed error for an HTTP status and its (decoded) body.

    ``body`` is normally a ``Status`` object; anything else (a proxy's HTML, plain text) becomes
    the message. A ``Status`` whose ``code`` differs from ``status`` (watch ERROR events arrive
    with HTTP 200) is classified by its ``code``.
    """
    reason = ""
    message = ""
    details: dict[str, Any] | None = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        code = body.get("code")
        if isinstance(code, int) and code >= 400:
            status = code
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or "")
        raw_details = body.get("details")
        details = raw_details if isinstance(raw_details, dict) else None
    elif isinstance(body, bytes | str):
        message = (body.decode("utf-8", "replace") if isinstance(body, bytes) else body)[:1024]
    elif body is not None:
        message = str(body)[:1024]
    cls: type[ApiError]
    if status >= 500:
        cls = ServerError
    elif status == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    else:
        cls = _BY_STATUS.get(status, ApiError)
    retry_after = _retry_after(retry_after_header, details) if cls in _WAITS else None
    return cls(status, reason, message, details, method=method, path=path, retry_after=retry_after)


# Answers whose Retry-After the client honours (aimctl.client._retry).
_WAITS: frozenset[type[ApiError]] = frozenset({TooManyRequests, ServerError})


def _retry_after(header: str | None, details: dict[str, Any] | None) -> float | None:
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    if details is not None:
        seconds = details.get("retryAfterSeconds")
        if isinstance(seconds, int | float):
            return float(seconds)
    return None
