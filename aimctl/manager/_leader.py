"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's algorithm.

Guarantees (given ``lease_duration > renew_deadline > 1.2 * retry_period`` and clocks that run
at the same *rate*; they need not agree on the time of day):

- At most one elector believes it leads at any moment. A candidate takes a lease held by someone
  else only after observing the same lease record unchanged for ``lease_duration`` seconds on
  its own monotonic clock. The leader stops believing it leads as soon as it has gone
  ``renew_deadline`` seconds without a successful renewal, which is earlier.
- Writes are optimistic (``resourceVersion``): two candidates racing for a free lease cannot
  both win; the loser gets 409 Conflict.
- Any error of one attempt (an error Status, a reset or refused connection, a timeout) is a
  failed attempt, never an exception out of :meth:`LeaderElector.acquire` or
  :meth:`LeaderElector.hold`: a candidate keeps trying, a leader keeps retrying until its renew
  deadline, as client-go's ``tryAcquireOrRenew`` does (kubernetes/kubernetes:
  staging/src/k8s.io/client-go/tools/leaderelection/leaderelection.go).
- :meth:`release` (clean shutdown) empties the holder and shortens the lease to 1 s, so a standby
  takes over within about one ``retry_period`` instead of a whole lease duration.

Defaults are controller-runtime's: 15 s lease, 10 s renew deadline, 2 s retry period. A
candidate retries every ``retry_period * [1, 2.2)`` (client-go's ``wait.JitterUntil`` with
``JitterFactor`` 1.2), so candidates started together spread out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.client import Conflict, NotFound

if TYPE_CHECKING:
    from aimctl.client import RestClient

__all__ = ["LeaderElectionConfig", "LeaderElector"]

log = structlog.get_logger("aimctl.leader")

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: a candidate waits ``retry_period * (1 + random() * 1.2)``."""


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Where the lease lives and how it is timed."""

    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > JITTER_FACTOR * self.retry_period:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > 1.2 * retry_period"
            )
        if not self.identity:
            raise ValueError("leader election identity must not be empty")


def _describe(err: BaseException) -> str:
    """``str(err)`` is empty for many transport errors (a bare reset); the type says what."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquire, hold and release one Lease.

    Usage::

        elector = LeaderElector(rest, config)
        await elector.acquire()           # blocks until this process leads
        task = asyncio.create_task(elector.hold())  # renews; returns when leadership is lost
        ...
        await elector.release()           # on clean shutdown
    """

    def __init__(
        self, rest: RestClient, config: LeaderElectionConfig, *, clock: Clock = MONOTONIC
    ) -> None:
        self._rest = rest
        self.config = config
        self._clock = clock
        self._path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{config.namespace}/leases/{config.name}"
        )
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self.is_leader = False

    async def acquire(self) -> None:
        """Block until this elector holds the lease.

        Never raises for a failed attempt (an unreachable server included): it retries after
        ``retry_period`` jittered to ``[1, 2.2)`` times. Cancel it to give up.
        """
        log.info(
            "Attempting to acquire leader lease",
            lease=f"{self.config.namespace}/{self.config.name}",
        )
        while True:
            if await self._try_acquire_or_renew():
                self.is_leader = True
                log.info("Successfully acquired lease", identity=self.config.identity)
                return
            await asyncio.sleep(self._jittered(self.config.retry_period))

    async def hold(self) -> None:
        """Renew every ``retry_period``; return when no renewal succeeded within
        ``renew_deadline`` (leadership lost) or another holder was seen on the lease.

        A failed renewal (any error, a hung request cut at the deadline) is retried every
        ``retry_period`` until the deadline; it never raises. Cancel it to stop renewing, then
        :meth:`release`.
        """
        while True:
            await asyncio.sleep(self.config.retry_period)
            deadline = self._last_renew + self.config.renew_deadline
            while True:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    self.is_leader = False
                    log.error("Leader lease lost: failed to renew within the renew deadline")
                    return
                ok = False
                with contextlib.suppress(TimeoutError):
                    ok = await asyncio.wait_for(self._try_acquire_or_renew(), remaining)
                if ok:
                    break
                if self._observed_holder() not in ("", self.config.identity):
                    self.is_leader = False
                    log.error(
                        "Leader lease taken by another holder", holder=self._observed_holder()
                    )
                    return
                await asyncio.sleep(
                    min(self.config.retry_period, max(0.0, deadline - self._clock.now()))
                )

    async def release(self) -> None:
        """Give the lease up (if held) so a standby need not wait out the lease duration.

        Best effort, bounded by ``renew_deadline``: when the server cannot be reached the
        standby simply waits the lease out. Never raises (but is a cancellation point).
        """
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            async with asyncio.timeout(self.config.renew_deadline):
                lease = await self._rest.request("GET", self._path)
                spec = lease.get("spec") or {}
                if spec.get("holderIdentity") != self.config.identity:
                    return
                lease["spec"] = {
                    **spec,
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "renewTime": _micro_time(),
                    "acquireTime": _micro_time(),
                }
                await self._rest.request("PUT", self._path, body=lease)
            log.info("Released leader lease")
        except Exception as err:  # a shutdown must go on whatever the server says
            log.warning("Failed to release leader lease", error=_describe(err))

    # -- internals ---------------------------------------------------------------------------

    def _observed_holder(self) -> str:
        return str((self._observed_spec or {}).get("holderIdentity") or "")

    def _jittered(self, d: float) -> float:
        # client-go's wait.Jitter(d, 1.2): d + random * 1.2 * d, in [d, 2.2 d)
        # (kubernetes/kubernetes: staging/src/k8s.io/apimachinery/pkg/util/wait/jitter.go).
        return d * (1 + random.random() * JITTER_FACTOR)

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt; True when this elector now holds the lease. Any error is a failed
        attempt (client-go returns false from ``tryAcquireOrRenew`` for every error)."""
        try:
            return await self._attempt()
        except Exception as err:
            log.warning("Failed to acquire or renew the leader lease", error=_describe(err))
            return False

    async def _attempt(self) -> bool:
        cfg = self.config
        now = _micro_time()
        try:
            lease = await self._rest.request("GET", self._path)
        except NotFound:
            body: dict[str, Any] = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": {
                    "holderIdentity": cfg.identity,
                    "leaseDurationSeconds": int(cfg.lease_duration),
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            try:
                await self._rest.request(
                    "POST",
                    f"/apis/coordination.k8s.io/v1/namespaces/{cfg.namespace}/leases",
                    body=body,
                )
            except Conflict:
                return False  # another candidate created it first
            self._observe(body["spec"])
            self._last_renew = self._clock.now()
            return True

        spec: dict[str, Any] = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and self._observed_at + duration > self._clock.now():
            return False  # held by someone else and not yet expired by our own clock

        new_spec = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": int(cfg.lease_duration),
            "renewTime": now,
            "acquireTime": spec.get("acquireTime") if holder == cfg.identity else now,
            "leaseTransitions": int(spec.get("leaseTransitions") or 0)
            + (0 if holder == cfg.identity else 1),
        }
        lease["spec"] = new_spec
        try:
            await self._rest.request("PUT", self._path, body=lease)
        except Conflict:
            return False  # someone wrote the lease since our GET; the next attempt re-reads
        self._observe(new_spec)
        self._last_renew = self._clock.now()
        return True

    def _observe(self, spec: dict[str, Any]) -> None:
        self._observed_spec = dict(spec)
        self._observed_at = self._clock.now()
