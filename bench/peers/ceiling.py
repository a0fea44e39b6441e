"""The ceiling: the writes a cache needs, made at full concurrency with no framework at all.

    python -m bench.peers.ceiling --kubeconfig K --namespace NS [--concurrency 64]
                                  [--ready-file F]

Lists the caches once, then for each one (at most ``--concurrency`` at a time) makes the writes
aimctl's reconciler makes for a new cache (:mod:`bench.peers._kvcache`), in the same order: the
finalizer (merge PATCH), the password Secret (POST) and its ``PasswordCreated`` Event (POST), the
NetworkPolicy, StatefulSet and Service (server-side apply), the status (server-side apply) and
the ``KVCacheProgressing`` Event (POST), over one aiohttp session with orjson. Nothing is
watched, cached, compared, queued or retried (the Secret is created unconditionally: the
namespace is new), so no operator can converge a set of new caches faster on the same machine:
the time left is the API server's and the JSON's.

With ``--ready-file`` it starts up (imports, credentials, TLS session) first, touches the file,
and waits for SIGUSR1 before listing, so the measured time excludes Python's start-up as it does
for the operators (which are started and ready before the caches are created). It prints one
JSON line with its own timing and exits 0, or 1 if any write failed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from aimctl.client import load_kubeconfig
from aimctl.reconcilers.kvcache._desired import auth_secret_name, pvc_name
from bench.peers._kvcache import (
    FIELD_MANAGER,
    FINALIZER,
    PASSWORD_CREATED_MESSAGE,
    PROGRESSING_MESSAGE,
    cache_path,
    children_paths,
    desired_state,
    event_body,
    secrets_path,
    status_apply_body,
)

__all__ = ["main"]

APPLY = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json", "Accept": "application/json"}
JSON = {"Content-Type": "application/json", "Accept": "application/json"}
APPLY_PARAMS = {"fieldManager": FIELD_MANAGER, "force": "true"}


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    params: dict[str, str] | None = None,
) -> None:
    async with session.request(
        method, url, params=params, data=orjson.dumps(body), headers=headers
    ) as resp:
        payload = await resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {payload[:300]!r}")


async def run(kubeconfig: str, namespace: str, concurrency: int, ready_file: Path | None) -> int:
    config = await load_kubeconfig(kubeconfig)
    go = asyncio.Event()
    if ready_file is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, go.set)
    else:
        go.set()
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=config.ssl_context or False)
    headers = await config.auth_headers()
    async with aiohttp.ClientSession(config.host, connector=connector, headers=headers) as session:
        # Open the TLS connections now, as an operator's would be after its initial list.
        async with session.get("/version") as resp:
            await resp.read()
        if ready_file is not None:
            await asyncio.to_thread(ready_file.touch)
        await go.wait()
        began = time.monotonic()
        async with session.get(cache_path(namespace)) as resp:
            listed = orjson.loads(await resp.read())
        caches: list[dict[str, Any]] = listed["items"]
        sem = asyncio.Semaphore(concurrency)
        events_url = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
        secrets_url = secrets_path(namespace)
        background: list[asyncio.Task[None]] = []
        failures = 0

        def record(raw: dict[str, Any], note: str, reason: str, action: str) -> None:
            # Recorded in the background, as aimctl's recorder does.
            event = event_body(raw, note, "ceiling", reason=reason, action=action)
            background.append(asyncio.create_task(_send(session, "POST", events_url, event, JSON)))

        async def converge(raw: dict[str, Any]) -> None:
            nonlocal failures
            async with sem:
                try:
                    meta = raw["metadata"]
                    name = meta["name"]
                    want = desired_state(raw)
                    finalizers = {
                        "metadata": {
                            "finalizers": [*meta.get("finalizers", []), FINALIZER],
                            "resourceVersion": meta["resourceVersion"],
                        }
                    }
                    await _send(session, "PATCH", cache_path(namespace, name), finalizers, MERGE)
                    await _send(session, "POST", secrets_url, want.secret, JSON)
                    note = PASSWORD_CREATED_MESSAGE.format(secret=auth_secret_name(name))
                    record(raw, note, "PasswordCreated", "Create")
                    netpol_url, sts_url, svc_url = children_paths(namespace, name)
                    for url, child in (
                        (netpol_url, want.network_policy),
                        (sts_url, want.statefulset),
                        (svc_url, want.service),
                    ):
                        await _send(session, "PATCH", url, child, APPLY, APPLY_PARAMS)
                    status = status_apply_body(raw, want.status)
                    status_url = cache_path(namespace, name, "status")
                    await _send(session, "PATCH", status_url, status, APPLY, APPLY_PARAMS)
                    note = PROGRESSING_MESSAGE.format(pvc=pvc_name(name))
                    record(raw, note, "KVCacheProgressing", "Reconcile")
                except Exception as err:
                    failures += 1
                    print(f"ceiling: {raw['metadata']['name']}: {err}", file=sys.stderr)

        await asyncio.gather(*(converge(c) for c in caches))
        seconds = time.monotonic() - began
        for failed in await asyncio.gather(*background, return_exceptions=True):
            if failed is not None:
                failures += 1
                print(f"ceiling: event: {failed}", file=sys.stderr)
    print(
        orjson.dumps({"caches": len(caches), "seconds": seconds, "failures": failures}).decode(),
        flush=True,
    )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.ceiling", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.kubeconfig, args.namespace, args.concurrency, args.ready_file))


if __name__ == "__main__":
    sys.exit(main())
