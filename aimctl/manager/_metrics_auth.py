"""Authentication and authorization of metrics scrapes by the kube-apiserver.

controller-runtime's ``filters.WithAuthenticationAndAuthorization``
(kubernetes-sigs/controller-runtime: pkg/metrics/filters/filters.go), which kubebuilder
scaffolds: the bearer token is checked with a ``TokenReview`` (authentication.k8s.io/v1), the
user it names is checked with a ``SubjectAccessReview`` (authorization.k8s.io/v1) for the
non-resource URL, and the answers are:

- 401 no ``Authorization: Bearer <token>``, or the TokenReview says the token is not valid
  (anonymous scrapes are refused, as its ``Anonymous: {Enabled: false}``);
- 403 the SubjectAccessReview does not allow ``get`` on the path;
- 500 the apiserver could not be asked (unreachable, timed out, or it refused the operator's
  own review: missing RBAC); logged, never cached;
- otherwise the request goes through.

Caching (k8s.io/apiserver's delegating authenticator and authorizer cache the same way, with
longer TTLs: 1 min for tokens, 5 min allowed / 30 s denied): review answers, positive and
negative, are kept for ``ttl`` seconds, tokens keyed by their SHA-256 (the token itself is
never stored), decisions keyed by the user's attributes and the path; each cache holds at most
``max_entries`` (least recently used dropped first). So a Prometheus scraping every 15 s costs
the apiserver two small reviews per scrape at most, and a revoked binding or token stops
working within ``ttl``.

The operator's ServiceAccount needs ``create`` on ``tokenreviews`` (authentication.k8s.io) and
``subjectaccessreviews`` (authorization.k8s.io); a scraper needs ``get`` on the non-resource
URL ``/metrics`` (the ``aimctl-metrics-reader`` ClusterRole).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from aimctl.client import ApiError, RestClient, TransportError
from aimctl.client._retry import with_retries

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_REVIEW_TIMEOUT",
    "DEFAULT_TTL",
    "Decision",
    "MetricsAuth",
    "ReviewFailed",
    "TTLCache",
    "UserInfo",
    "auth_middleware",
]

log = structlog.get_logger("aimctl.manager.metrics")

DEFAULT_TTL: Final = 10.0
DEFAULT_MAX_ENTRIES: Final = 1024
# k8s.io/apiserver's TokenAccessReviewTimeout in controller-runtime's filter.
DEFAULT_REVIEW_TIMEOUT: Final = 10.0
# Tries per review: a review creates nothing, so resending after a reset connection or a 5xx
# is safe (controller-runtime retries with a 0.5 s x1.5 backoff, 5 steps; our client's backoff
# starts at 50 ms, all within the review timeout).
_REVIEW_ATTEMPTS: Final = 3

TOKEN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """At most ``max_entries`` values, each for ``ttl`` seconds of ``clock``; the least
    recently used is dropped first. Expired entries are dropped when looked up or pushed out."""

    def __init__(
        self, ttl: float, max_entries: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class UserInfo:
    """Who a TokenReview says the token belongs to (authentication.k8s.io/v1 ``UserInfo``)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_status(cls, user: Mapping[str, Any]) -> UserInfo:
        extra = user.get("extra") or {}
        return cls(
            username=str(user.get("username", "")),
            uid=str(user.get("uid", "")),
            groups=tuple(user.get("groups") or ()),
            extra=tuple(sorted((k, tuple(v or ())) for k, v in extra.items())),
        )


@dataclass(frozen=True)
class Decision:
    """The answer for one request: ``status`` 200 lets it through; otherwise the response."""

    status: int
    message: str
    user: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200


_REFUSED: Final = UserInfo(username="")  # the tokens cache's "not valid"


class ReviewFailed(Exception):
    """The apiserver could not be asked, or gave no usable answer (a 500 for the scraper)."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive, as
    k8s.io/apiserver's bearertoken authenticator), or None."""
    if not authorization:
        return None
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


class MetricsAuth:
    """Asks the apiserver whether a request may read the metrics (see the module docstring).

    ``rest`` is the operator's own client (its credentials create the reviews). ``ttl``,
    ``max_entries``: the caches; ``timeout``: seconds per review, retries included.
    """

    def __init__(
        self,
        rest: RestClient,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        timeout: float = DEFAULT_REVIEW_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rest = rest
        self.timeout = timeout
        # sha256(token) -> the user, or _REFUSED for a token the apiserver refused.
        self.tokens: TTLCache[bytes, UserInfo] = TTLCache(ttl, max_entries, clock=clock)
        # (user, path, verb) -> (allowed, reason)
        self.decisions: TTLCache[tuple[UserInfo, str, str], tuple[bool, str]] = TTLCache(
            ttl, max_entries, clock=clock
        )
        self.reviews = 0  # reviews sent (cache misses), for tests and measurements

    async def decide(self, authorization: str | None, path: str, verb: str = "get") -> Decision:
        """The decision for a request with this ``Authorization`` header on ``path``."""
        token = bearer_token(authorization)
        if not token:
            return Decision(401, "Unauthorized")
        try:
            user = await self.authenticate(token)
            if user is None:
                return Decision(401, "Unauthorized")
            allowed, reason = await self.authorize(user, path, verb)
        except ReviewFailed as err:
            log.error(
                "Metrics request not checked: the apiserver could not be asked", error=str(err)
            )
            return Decision(500, "Authentication or authorization failed")
        if not allowed:
            log.debug("Metrics request denied", user=user.username, reason=reason)
            return Decision(403, f"Authorization denied for user {user.username}", user.username)
        return Decision(200, "ok", user.username)

    async def authenticate(self, token: str) -> UserInfo | None:
        """The user ``token`` belongs to, or None when it is not valid.

        Raises:
            ReviewFailed: the TokenReview could not be made.
        """
        key = hashlib.sha256(token.encode()).digest()
        cached = self.tokens.get(key)
        if cached is not None:
            return None if cached is _REFUSED else cached
        review = await self._review(
            TOKEN_REVIEWS,
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = review.get("status") or {}
        user = _REFUSED
        if status.get("authenticated"):
            user = UserInfo.from_status(status.get("user") or {})
        if not user.username:  # also an authenticated review without a user name: unusable
            user = _REFUSED
        self.tokens.put(key, user)
        return None if user is _REFUSED else user

    async def authorize(self, user: UserInfo, path: str, verb: str) -> tuple[bool, str]:
        """Whether ``user`` may ``verb`` the non-resource URL ``path``, and the reason given.

        Raises:
            ReviewFailed: the SubjectAccessReview could not be made.
        """
        key = (user, path, verb)
        cached = self.decisions.get(key)
        if cached is not None:
            return cached
        spec: dict[str, Any] = {
            "user": user.username,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        review = await self._review(
            SUBJECT_ACCESS_REVIEWS,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": spec,
            },
        )
        status = review.get("status") or {}
        decision = (
            bool(status.get("allowed")) and not status.get("denied"),
            str(status.get("reason") or status.get("evaluationError") or ""),
        )
        self.decisions.put(key, decision)
        return decision

    async def _review(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.reviews += 1

        def send() -> Awaitable[Any]:
            return self.rest.request("POST", path, body=body)

        try:
            async with asyncio.timeout(self.timeout):
                answer = await with_retries(send, idempotent=True, attempts=_REVIEW_ATTEMPTS)
        except (ApiError, TransportError) as err:
            raise ReviewFailed(f"{body['kind']}: {err}") from err
        except TimeoutError as err:
            raise ReviewFailed(f"{body['kind']}: no answer within {self.timeout:g}s") from err
        if not isinstance(answer, dict):
            raise ReviewFailed(f"{body['kind']}: unexpected answer {answer!r:.200}")
        return answer


def auth_middleware(auth: MetricsAuth) -> Middleware:
    """An aiohttp middleware that lets through only what ``auth`` allows (``get`` on the
    request's path, as controller-runtime's filter authorizes the request's own path)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        decision = await auth.decide(request.headers.get("Authorization"), request.path)
        if not decision.allowed:
            headers = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
            return web.Response(
                status=decision.status, text=decision.message + "\n", headers=headers
            )
        return await handler(request)

    return check
