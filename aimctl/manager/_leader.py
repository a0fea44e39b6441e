"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's algorithm.

Guarantees (given ``lease_duration > renew_deadline > 1.2 * retry_period`` and clocks that run
at the same *rate*; they need not agree on the time of day):

- At most one elector believes it leads at any moment. A candidate takes a lease held by someone
  else only after observing the same lease record unchanged for ``lease_duration`` seconds on
  its own monotonic clock. The leader stops believing it leads as soon as it has gone
  ``renew_deadline`` seconds without a successful renewal, which is earlier.
- Writes are optimistic (``resourceVersion``): two candidates racing for a free lease cannot
  both win; the loser gets 409 Conflict.
- :meth:`release` (clean shutdown) empties the holder and shortens the lease to 1 s, so a standby
  takes over within about one ``retry_period`` instead of a whole lease duration.

Defaults are controller-runtime's: 15 s lease, 10 s renew deadline, 2 s retry period.
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
from aimctl.client import ApiError, Conflict, NotFound

if TYPE_CHECKING:
    from aimctl.client import RestClient

__all__ = ["LeaderElectionConfig", "LeaderElector"]

log = structlog.get_logger("aimctl.leader")

JITTER_FACTOR = 1.2


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
        """Block until this elector holds the lease."""
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
        ``renew_deadline`` (leadership lost). Cancel it to stop renewing, then :meth:`release`."""
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
        """Give the lease up (if held) so a standby need not wait out the lease duration."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
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
        except ApiError as err:
            log.warning("Failed to release leader lease", error=str(err))

    # -- internals ---------------------------------------------------------------------------

    def _observed_holder(self) -> str:
        return str((self._observed_spec or {}).get("holderIdentity") or "")

    def _jittered(self, d: float) -> float:
        return d * (1 + random.random() * (JITTER_FACTOR - 1))

    async def _try_acquire_or_renew(self) -> bool:
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
            except ApiError as err:
                log.warning("Failed to create the leader lease", error=str(err))
                return False
            self._observe(body["spec"])
            self._last_renew = self._clock.now()
            return True
        except ApiError as err:
            log.warning("Error retrieving lease", error=str(err))
            return False

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
            return False
        except ApiError as err:
            log.warning("Failed to update lease", error=str(err))
            return False
        self._observe(new_spec)
        self._last_renew = self._clock.now()
        return True

    def _observe(self, spec: dict[str, Any]) -> None:
        self._observed_spec = dict(spec)
        self._observed_at = self._clock.now()
