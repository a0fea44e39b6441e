"""Shared pieces of the ship tests: render and deploy ``manifests/``, run the operator with the
ServiceAccount's own token, apply the guide's samples in a namespace of the test's choosing."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from aimctl.cli._dev import FAST_SSD
from aimctl.cli._dev_operator import operator_argv
from aimctl.envtest import ApiError, ControlPlane, ManagedProcess
from aimctl.envtest._ports import free_ports
from aimctl.envtest.pytest_plugin import REQUIRE_ENV

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
SAMPLES = MANIFESTS / "samples"
SYSTEM_NS = "aimctl-system"
SA = "aimctl-controller-manager"
CLUSTER_ROLE = "aimctl-manager-role"
LEADER_ROLE = "aimctl-leader-election-role"
DEPLOYMENT = "aimctl-controller-manager"
CRDS = ("aimkvcaches.aim.silogen.ai", "aimservices.aim.silogen.ai")

T = TypeVar("T")

# How the API server words an RBAC (or RBAC-backed admission) refusal.
DENIED = re.compile(r"403 Forbidden|cannot [a-z]+ resource ")


def dev_up_args(directory: Path, metrics: int, health: int) -> list[str]:
    """``dev up --dir DIR`` with the operator's ports given (free ones instead of 8080/8081,
    which something else on the machine may hold)."""
    return [
        "dev",
        "up",
        "--dir",
        str(directory),
        "--metrics-bind-address",
        f"127.0.0.1:{metrics}",
        "--health-probe-bind-address",
        f"127.0.0.1:{health}",
    ]


def kubectl(
    cp: ControlPlane, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The pinned kubectl as admin; on failure the assertion shows stderr."""
    out = cp.kubectl(*args, input=input, check=False, timeout=120)
    if check:
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}{out.stdout}"
    return out


def get_json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(kubectl(cp, "get", *args, "-o", "json").stdout)


def render(cp: ControlPlane, directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR`` with the pinned kubectl, as documents."""
    out = kubectl(cp, "kustomize", str(directory))
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def dump(objects: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def deploy(cp: ControlPlane) -> str:
    """``kubectl apply --server-side -k manifests/default`` (what ``make deploy`` runs)."""
    out = kubectl(cp, "apply", "--server-side", "-k", str(MANIFESTS / "default"))
    wait_for(
        "the AIM CRDs to be Established and servable",
        lambda: (
            all(
                kubectl(
                    cp,
                    "wait",
                    "--for=condition=Established",
                    f"crd/{c}",
                    "--timeout=30s",
                    check=False,
                ).returncode
                == 0
                for c in CRDS
            )
            and kubectl(cp, "get", "aimkvcaches,aimservices", "-A", check=False).returncode == 0
        ),
        timeout=60,
    )
    return out.stdout + out.stderr


# -- storage ---------------------------------------------------------------------------------


def fast_ssd(cp: ControlPlane) -> None:
    """The expandable ``fast-ssd`` StorageClass ``make dev`` has; the cluster's kwok binds its
    claims. Idempotent."""
    cp.add_storage_class(FAST_SSD, expandable=True)


# -- the ServiceAccount's credentials --------------------------------------------------------


def sa_kubeconfig(
    cp: ControlPlane, path: Path, *, sa: str = SA, namespace: str = SYSTEM_NS
) -> Path:
    """A kubeconfig with a fresh token of ``sa`` (server and CA from the admin kubeconfig)."""
    token = kubectl(cp, "create", "token", sa, "-n", namespace, "--duration=1h").stdout.strip()
    ca = base64.b64encode(cp.ca_file.read_bytes()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "ship", "cluster": {"server": cp.url, "certificate-authority-data": ca}}
        ],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "ship", "context": {"cluster": "ship", "user": sa}}],
        "current-context": "ship",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


# -- the operator ----------------------------------------------------------------------------


class Operator:
    """``aimctl run`` as a child process (killed with the test process; stopped on exit)."""

    def __init__(self, kubeconfig: Path, log_path: Path, *extra: str) -> None:
        self.metrics_port, self.health_port = free_ports(2)
        # `aimctl dev`'s command line, with leader election back on (a later flag wins).
        argv = operator_argv(
            kubeconfig,
            metrics_bind_address=f"127.0.0.1:{self.metrics_port}",
            health_probe_bind_address=f"127.0.0.1:{self.health_port}",
            extra=[
                "--leader-elect",
                "--leader-election-namespace",
                SYSTEM_NS,
                "--graceful-shutdown-timeout",
                "5",
                *extra,
            ],
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIMCTL_")}
        env.pop("KUBECONFIG", None)
        self.process = ManagedProcess("aimctl-run", argv, log_path=log_path, env=env)
        self.log_path = log_path

    def __enter__(self) -> Operator:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop(timeout=15)

    @property
    def exit_code(self) -> int | None:
        popen = self.process._popen  # the code is only readable from the Popen
        return None if popen is None else popen.poll()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def converge(
        self,
        cp: ControlPlane,
        namespace: str,
        what: str,
        probe: Callable[[], object],
        timeout: float,
    ) -> None:
        """``wait_for``, failing with the namespace's state and the operator's log."""
        try:
            wait_for(what, probe, timeout=timeout)
        except AssertionError as e:
            raise AssertionError(
                f"{e}\n{diagnose(cp, namespace)}\n--- operator log ---\n"
                + "\n".join(self.log().splitlines()[-60:])
            ) from None

    def denials(self) -> list[str]:
        """Log lines where the server refused a request for lack of permission."""
        return [ln for ln in self.log().splitlines() if DENIED.search(ln)]

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False


def diagnose(cp: ControlPlane, namespace: str) -> str:
    kinds = "aimkvcache,aimservice,statefulset,pod,pvc,deployment,service,configmap,networkpolicy"
    listing = kubectl(cp, "get", kinds, "-n", namespace, "-o", "wide", check=False)
    events = kubectl(cp, "get", "events", "-n", namespace, check=False)
    statuses = kubectl(
        cp, "get", "aimkvcache,aimservice", "-n", namespace, "-o", "yaml", check=False
    )
    return (
        f"--- {namespace} ---\n{listing.stdout}{listing.stderr}\n--- events ---\n"
        f"{events.stdout[-4000:]}\n--- AIM objects ---\n{statuses.stdout[-6000:]}"
    )


# -- the guide's samples ---------------------------------------------------------------------


def sample(name: str, namespace: str) -> list[dict[str, Any]]:
    """A sample file's objects, moved from ``ml-team`` to ``namespace``."""
    docs = [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]
    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        doc["metadata"]["namespace"] = namespace
        out.append(doc)
    return out


def apply_sample(cp: ControlPlane, name: str, namespace: str) -> None:
    kubectl(cp, "apply", "-f", "-", input=dump(sample(name, namespace)))


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


AIM = "/apis/aim.silogen.ai/v1alpha1"


def rest_get(cp: ControlPlane, path: str) -> Any:
    """GET as admin through the in-process client (no kubectl process): the decoded object,
    or None when it does not exist."""
    try:
        return cp.client().request("GET", path)
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def items(cp: ControlPlane, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (rest_get(cp, path) or {}).get("items") or []
    return found


def caches(cp: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        i["metadata"]["name"]: i for i in items(cp, f"{AIM}/namespaces/{namespace}/aimkvcaches")
    }


def services(cp: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        i["metadata"]["name"]: i for i in items(cp, f"{AIM}/namespaces/{namespace}/aimservices")
    }


def converged(
    cp: ControlPlane, namespace: str, want_caches: Sequence[str], want_services: Sequence[str]
) -> bool:
    """The named caches are Ready and the named services report KVCacheReady=True."""
    cs, ss = caches(cp, namespace), services(cp, namespace)
    return all(
        ((cs.get(c) or {}).get("status") or {}).get("status") == "Ready" for c in want_caches
    ) and all(
        condition(ss.get(s) or {}, "KVCacheReady").get("status") == "True" for s in want_services
    )


def unavailable(why: str) -> None:
    """Skip, or fail under AIMCTL_REQUIRE_INTEGRATION=1 (CI forbids skips)."""
    if os.environ.get(REQUIRE_ENV, "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why} ({REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(why)


def pinned_tool(env: str, script: str, binary: str, *, timeout: float) -> Path:
    """``$env``, else ``binary`` in the directory ``hack/<script>`` prints last (the script
    builds the pinned tool once, minutes cold, then answers in about a second from its checked
    cache)."""
    if os.environ.get(env):
        return Path(os.environ[env])
    out = subprocess.run(
        ["bash", str(REPO / "hack" / script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        unavailable(f"hack/{script} failed (exit {out.returncode}): {out.stderr[-2000:]}")
    return Path(lines[-1]) / binary
