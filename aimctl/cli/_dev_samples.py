"""``aimctl dev``'s samples: the guide's Quick Start and shared cache, applied once per cluster,
then waited for until every AIMKVCache is Ready and every AIMService reports ``KVCacheReady``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aimctl.envtest import log_tail

if TYPE_CHECKING:
    from aimctl.cli._dev import Kubectl

__all__ = ["NAMESPACE", "QUICK_START", "SHARED", "apply_samples", "not_ready", "wait_ready"]

NAMESPACE = "ml-team"
QUICK_START = "quick-start.yaml"
SHARED = ("shared-cache.yaml", "shared-cache-services.yaml")
SAMPLES_ANNOTATION = "aimctl.silogen.ai/dev-samples"


def _objects(kubectl: Kubectl, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", kind, "-n", NAMESPACE).get("items", [])
    return items


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def not_ready(kubectl: Kubectl) -> list[str]:
    """What is not there yet, one line per object."""
    waiting = []
    for cache in _objects(kubectl, "aimkvcaches"):
        status = cache.get("status", {}) or {}
        if status.get("status") != "Ready":
            ready = _condition(cache, "Ready") or {}
            detail = ready.get("message") or ready.get("reason") or "no status yet"
            waiting.append(
                f"AIMKVCache {cache['metadata']['name']}: {status.get('status', '-')} ({detail})"
            )
    for service in _objects(kubectl, "aimservices"):
        cond = _condition(service, "KVCacheReady")
        if cond is None or cond.get("status") != "True":
            detail = (cond or {}).get("message") or "no KVCacheReady condition yet"
            waiting.append(f"AIMService {service['metadata']['name']}: {detail}")
    return waiting


def wait_ready(kubectl: Kubectl, directory: Path, timeout: float, want: Sequence[str]) -> None:
    """Wait until the caches ``want`` exist and every cache/service in ml-team is ready."""
    deadline = time.monotonic() + timeout
    while True:
        names = {c["metadata"]["name"] for c in _objects(kubectl, "aimkvcaches")}
        waiting = [f"AIMKVCache {n}: not created yet" for n in want if n not in names]
        waiting += not_ready(kubectl)
        if not waiting:
            return
        if time.monotonic() > deadline:
            log = directory / "operator.log"
            raise click.ClickException(
                f"not Ready after {timeout:.0f}s:\n  "
                + "\n  ".join(waiting)
                + f"\nThe operator's log is {log}; its last lines:\n{log_tail(log, 25)}\n"
                f"Everything is still running: inspect it (KUBECONFIG={kubectl.kubeconfig}), "
                f"then `make dev-down` (aimctl dev down --dir {directory})."
            )
        time.sleep(0.5)


def apply_samples(
    kubectl: Kubectl, directory: Path, manifests: Path, timeout: float, say: Callable[[str], None]
) -> None:
    """Apply the samples once per cluster, then wait until everything in ml-team is ready.

    The namespace remembers it (annotation ``aimctl.silogen.ai/dev-samples``): a second
    ``dev up`` must not re-apply them over the user's changes (a grown cache cannot shrink back).
    """
    samples = manifests / "samples"
    found = kubectl.run("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "json").stdout
    metadata = (json.loads(found) if found.strip() else {}).get("metadata", {})
    if (metadata.get("annotations") or {}).get(SAMPLES_ANNOTATION) == "applied":
        say(f"samples: applied earlier (namespace {NAMESPACE} says so); waiting until Ready")
        wait_ready(kubectl, directory, timeout, [])
        return
    kubectl.apply_objects(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    )
    # quick-start.yaml and shared-cache-services.yaml both define llama-chat (as the guide does):
    # Quick Start first, until its own cache is Ready, then the shared cache takes it over.
    kubectl.run("apply", "-f", str(samples / QUICK_START))
    say(f"samples: applied {QUICK_START}; waiting for its cache kvcache-llama-chat")
    wait_ready(kubectl, directory, timeout, ["kvcache-llama-chat"])
    for name in SHARED:
        kubectl.run("apply", "-f", str(samples / name))
    kubectl.run("annotate", "namespace", NAMESPACE, f"{SAMPLES_ANNOTATION}=applied", "--overwrite")
    say(
        f"samples: applied {', '.join(SHARED)} (llama-chat moves to shared-cache); "
        f"waiting until everything in {NAMESPACE} is Ready"
    )
    wait_ready(kubectl, directory, timeout, ["shared-cache"])
