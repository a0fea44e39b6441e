"""Which failed requests the client sends again, and how long it waits first.

Owns the retry decision for single requests; fed by ``Client`` with one call per request and
whether that request is *idempotent* (sending it twice has the effect of sending it once).

The rules (client-go's rest client, k8s.io/client-go/rest/request.go and with_retry.go, which
retries GETs on a reset connection and any request answered 429/5xx with ``Retry-After``):

- 429 Too Many Requests: always retried. API Priority and Fairness rejects before the request
  is processed, so even a create is safe to resend.
- ``TransportError`` with ``request_sent`` False (the connection could not be opened): always
  retried, the server never saw it.
- ``TransportError`` after the request may have been sent, and 5xx: retried only when the
  request is idempotent. A lost answer to a JSON patch ``add /metadata/finalizers/-`` or to a
  create may mean it was applied: resending would apply it twice. (client-go also resends a
  non-idempotent write answered 5xx *with* ``Retry-After``; we do not, since a 504 timeout
  carries one and its write may have been committed.)
- Everything else (4xx) is the answer.

Waits: exponential backoff with jitter (50 ms doubling, at most 5 s), or the server's
``Retry-After`` when longer (capped at ``MAX_RETRY_AFTER`` so a bad proxy cannot park a
reconcile for an hour), as client-go's ``withRetry.Before`` does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from aimctl.client._errors import ServerError, TooManyRequests, TransportError

__all__ = ["MAX_RETRY_AFTER", "retry_delay", "with_retries"]

T = TypeVar("T")

MAX_RETRY_AFTER: Final = 60.0
_BASE: Final = 0.05
_MAX_BACKOFF: Final = 5.0


def retry_delay(exc: BaseException, *, idempotent: bool, attempt: int) -> float | None:
    """Seconds to wait before sending again after ``exc`` on try number ``attempt`` (1-based),
    or None when ``exc`` is the answer (raise it)."""
    if isinstance(exc, TooManyRequests | ServerError) and (
        idempotent or isinstance(exc, TooManyRequests)
    ):
        retry_after = exc.retry_after
    elif isinstance(exc, TransportError) and (idempotent or not exc.request_sent):
        retry_after = None
    else:
        return None
    backoff = min(_MAX_BACKOFF, _BASE * 2.0 ** (attempt - 1)) * random.uniform(1.0, 1.5)
    if retry_after is not None:
        return max(backoff, min(retry_after, MAX_RETRY_AFTER))
    return backoff


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    idempotent: bool,
    attempts: int,
) -> T:
    """``await call()``, sent again per :func:`retry_delay` up to ``attempts`` tries in all;
    the last failure is raised. Cancellation: a cancellation point at each try and wait."""
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            delay = retry_delay(exc, idempotent=idempotent, attempt=attempt)
            if delay is None or attempt >= attempts:
                raise
        await asyncio.sleep(delay)
        attempt += 1
