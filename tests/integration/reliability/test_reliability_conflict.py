"""A conflicting writer keeps changing the operator's StatefulSets.

Injected: every 200 ms a rogue writer changes one of K StatefulSets, in rotation: a server-side
apply of another image under its own field manager with ``force=true`` (taking the field over), a
merge patch of the ``app.kubernetes.io/name`` label, or a merge patch of the
``app.kubernetes.io/managed-by`` label (which also drops the StatefulSet out of the operator's
label-filtered cache, so the operator sees it "deleted").

Asserted: drift is corrected without a hot loop: the operator's PATCHes while the writer runs
(and until convergence after it stops) are at most one write per foreign write (plus a small
constant; a label change that drops a StatefulSet out of the cache also costs one create-only
apply the server refuses with 409, counted apart as ``refused_create_only``),
and its reconciles a small multiple of them; after the writer stops, everything converges back
to the operator's spec and the operator goes quiet: 0 writes in the next 10 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aimctl.client import RestClient
from aimctl.envtest import ControlPlane

from .reliability_kit import (
    APPLY,
    CRDS,
    DEFAULT_IMAGE,
    InProcessOperator,
    apply_all,
    audit,
    cache_manifest,
    eventually,
    list_items,
    report,
    run_operator,
    statefulsets_path,
)

PERIOD = 0.2
ROGUE = "rogue-writer"
QUIET = 10.0


async def _rogue_write(rest: RestClient, ns: str, sts: str, n: int) -> None:
    action = n % 3
    if action == 0:
        await rest.request(
            "PATCH",
            statefulsets_path(ns, sts),
            params={"fieldManager": ROGUE, "force": "true"},
            body={
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": sts, "namespace": ns},
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "redis", "image": f"redis:6.2.{n}"}]}
                    }
                },
            },
            content_type=APPLY,
        )
        return
    label = "app.kubernetes.io/name" if action == 1 else "app.kubernetes.io/managed-by"
    await rest.request(
        "PATCH",
        statefulsets_path(ns, sts),
        params={"fieldManager": ROGUE},
        body={"metadata": {"labels": {label: f"rogue-{n}"}}},
        content_type="application/merge-patch+json",
    )


async def _in_spec(rest: RestClient, op: InProcessOperator, k: int) -> bool:
    """Converged, and every StatefulSet back to the operator's image and labels."""
    if not (op.drained() and (await audit(rest, op.namespace)).complete(k)):
        return False
    for sts in await list_items(rest, statefulsets_path(op.namespace)):
        labels = sts["metadata"].get("labels") or {}
        image = sts["spec"]["template"]["spec"]["containers"][0]["image"]
        if labels.get("app.kubernetes.io/name") != "aimkvcache" or image != DEFAULT_IMAGE:
            return False
    return True


async def _conflict(cp: ControlPlane, ns: str, test: str, *, k: int, duration: float) -> None:
    await asyncio.to_thread(cp.install_crds, CRDS)
    names = [f"contested-{i}" for i in range(k)]
    async with (
        await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest,
        run_operator(cp.kubeconfig, ns) as op,
    ):
        await apply_all(rest, (cache_manifest(n, ns) for n in names))
        await eventually(lambda: _in_spec(rest, op, k), within=120, what="caches converged")
        await asyncio.sleep(1.0)  # the operator's own last writes come back through the watch
        patches0, reconciles0 = op.patches(), op.reconciles()
        refused0 = op.refused_patches()
        writes = 0
        per_second: list[int] = []
        started = time.monotonic()
        next_write = started
        while time.monotonic() - started < duration:
            await _rogue_write(rest, ns, f"{names[writes % k]}-statefulset", writes)
            writes += 1
            if len(per_second) < int(time.monotonic() - started):
                per_second.append(op.patches() - patches0)
            next_write += PERIOD
            await asyncio.sleep(max(0.0, next_write - time.monotonic()))
        writer_s = time.monotonic() - started
        patches_during = op.patches() - patches0
        await eventually(
            lambda: _in_spec(rest, op, k), within=120, what="converged after the writer stopped"
        )
        settle_s = time.monotonic() - started - writer_s
        refused = op.refused_patches() - refused0
        corrections = op.patches() - patches0 - refused
        reconciles = op.reconciles() - reconciles0
        await asyncio.sleep(1.0)  # the corrections' own watch events
        quiet0 = op.writes()
        await asyncio.sleep(QUIET)
        quiet_writes = op.writes() - quiet0
        op.assert_alive()
    # The worst 10 s of operator PATCHes while the writer ran, scaled to a minute.
    windows = [b - a for a, b in zip([0, *per_second], per_second[9:], strict=False)]
    figures: dict[str, Any] = {
        "statefulsets": k,
        "writer_period_s": PERIOD,
        "writer_s": round(writer_s, 1),
        "foreign_writes": writes,
        "foreign_writes_per_min": round(writes / writer_s * 60),
        "operator_patches_while_writing": patches_during,
        "operator_patches_per_min": round(patches_during / writer_s * 60),
        "operator_patches_per_min_worst_10s": max(windows, default=0) * 6,
        "operator_patches_total": corrections,
        "corrections_per_foreign_write": round(corrections / max(writes, 1), 2),
        "refused_create_only": refused,
        "reconciles": int(reconciles),
        "converged_after_stop_s": round(settle_s, 1),
        "writes_in_quiet_window": quiet_writes,
        "quiet_window_s": QUIET,
    }
    report(test, figures)
    assert corrections >= 1, "the operator never corrected the drift"
    assert corrections <= writes + 2 * k, "more than one correction per foreign write: a loop"
    assert refused <= writes, "more than one refused create-only apply per foreign write"
    assert reconciles <= 4 * writes + 20, "reconciles out of proportion with the foreign writes"
    assert quiet_writes == 0, "the operator kept writing after the writer stopped"


async def test_conflicting_writer_is_corrected_without_a_hot_loop(
    control_plane: ControlPlane, namespace: str
) -> None:
    await _conflict(control_plane, namespace, "conflicting_writer", k=3, duration=20.0)


@pytest.mark.slow
async def test_conflicting_writer_for_two_minutes(
    control_plane: ControlPlane, namespace: str
) -> None:
    await _conflict(control_plane, namespace, "conflicting_writer_2min", k=5, duration=120.0)
