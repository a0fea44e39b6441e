"""A manager process for the leader-election test: reconciles ConfigMaps in one namespace and
appends one JSON line per reconcile (identity, start, end; wall-clock seconds) to a file.

    python leader_app.py KUBECONFIG NAMESPACE IDENTITY OUTFILE [LEASE RENEW RETRY]

Timings default to 6/4/1 s. Exits 0 on a clean stop and 6 when leadership was lost (the
``aimctl run`` code); an unexpected exception exits 1 with a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from aimctl.client import GVK, load_kubeconfig
from aimctl.controller import Request
from aimctl.log import configure_logging
from aimctl.manager import LeaderElectionConfig, LeaderElectionLost, Manager


async def main(
    kubeconfig: str,
    namespace: str,
    identity: str,
    outfile: str,
    lease: str = "6",
    renew: str = "4",
    retry: str = "1",
) -> int:
    configure_logging("json", "info")
    config = await load_kubeconfig(kubeconfig)
    mgr = Manager(
        config,
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="0",
        leader_election=LeaderElectionConfig(
            namespace=namespace,
            name="leader-test",
            identity=identity,
            lease_duration=int(lease),
            renew_deadline=float(renew),
            retry_period=float(retry),
        ),
        graceful_shutdown_timeout=5,
    )
    out = open(outfile, "a", buffering=1)  # noqa: SIM115, ASYNC230 - opened once, line-buffered

    async def reconcile(req: Request) -> None:
        start = time.time()
        await asyncio.sleep(0.05)
        out.write(
            json.dumps({"id": identity, "key": req.name, "start": start, "end": time.time()}) + "\n"
        )

    mgr.controller().named("leader-test").for_(GVK("", "v1", "ConfigMap")).complete(reconcile)
    try:
        await mgr.run(handle_signals=True)
    except LeaderElectionLost:
        return 6
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:8])))
