"""Acceptance (issue #18 on the real node): ``helm install`` runs the operator for real.

The operator image is built from this machine's Python (``aimctl.envtest._operator_image``: the
Dockerfile needs a Docker engine and a registry, neither of which exists here) and imported into
the real node's containerd; the chart's two replicas are scheduled there, admitted under the
"restricted" Pod Security Standard, pass their real /readyz probes, elect a leader through the
``kubernetes`` Service with their ServiceAccount's token, and converge the guide's Quick Start,
whose Redis also runs on the real node. Their secure /metrics answers only a token allowed to
read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimctl.envtest import (
    REAL_NODE_NAME,
    ControlPlane,
    default_cache_dir,
    real_pod_scheduling,
)
from aimctl.envtest._images import import_images
from aimctl.envtest._operator_image import OPERATOR_IMAGE, operator_image
from tests.integration.ship.test_ship_helm_render import CHART, find_helm

SYSTEM = "aimctl-system"
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}
# The interpreter the operator image runs: this one's installation, at its host path.
PYTHON = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")
SAMPLE = Path(__file__).resolve().parents[3] / "manifests" / "samples" / "quick-start.yaml"


def _json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(cp.kubectl(*args, "-o", "json").stdout)


def _wait(what: str, check: Any, within: float = 180.0) -> Any:
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def installed(
    real_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The chart installed in aimctl-system with the locally built image, on the real node."""
    cp = real_cluster
    image = operator_image(default_cache_dir() / "images")
    import_images("ctr", cp.work_dir / "node" / "containerd" / "containerd.sock", [image])
    cp.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": SYSTEM, "labels": RESTRICTED},
            }
        ),
    )
    scheduling = real_pod_scheduling()
    values = tmp_path_factory.mktemp("values") / "values.json"
    repository, _, tag = OPERATOR_IMAGE.rpartition(":")
    values.write_text(
        json.dumps(
            {
                "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
                "nodeSelector": scheduling["nodeSelector"],
                "tolerations": scheduling["tolerations"],
            }
        )
    )
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(cp.kubeconfig),
    }
    helm = str(find_helm())
    began = time.monotonic()
    subprocess.run(
        [helm, "install", "aimctl", str(CHART), "-n", SYSTEM, "-f", str(values), "--wait",
         "--timeout", "180s"],
        env=env, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    print(f"[measure] helm install --wait with real operator pods: {time.monotonic() - began:.1f}s")
    yield SYSTEM
    subprocess.run(
        [helm, "uninstall", "aimctl", "-n", SYSTEM, "--wait", "--timeout", "120s"],
        env=env, check=False, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_helm_install_runs_the_operator_on_the_real_node(
    real_cluster: ControlPlane, installed: str, real_namespace: str
) -> None:
    cp = real_cluster
    pods = _json(cp, "get", "pods", "-n", installed, "-l", "app.kubernetes.io/name=aimctl")
    assert len(pods["items"]) == 2
    for pod in pods["items"]:
        assert pod["spec"]["nodeName"] == REAL_NODE_NAME
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] and status["containerID"].startswith("containerd://")
        assert status["restartCount"] == 0
    # One of them leads, through the `kubernetes` Service with its ServiceAccount's token.
    lease = _wait(
        "a leader",
        lambda: _json(cp, "get", "lease", "-n", installed, "aimctl-operator-lock")["spec"].get(
            "holderIdentity"
        ),
        within=60,
    )
    logs = "".join(
        cp.kubectl("logs", "-n", installed, p["metadata"]["name"]).stdout for p in pods["items"]
    )
    assert "Successfully acquired lease" in logs, logs[-3000:]
    assert lease

    # The guide's Quick Start, converged by the operator pod (nothing else runs an operator).
    began = time.monotonic()
    text = SAMPLE.read_text().replace("namespace: ml-team", f"namespace: {real_namespace}")
    cp.kubectl("apply", "-f", "-", input=text)
    cache = _wait(
        "the Quick Start cache Ready",
        lambda: (
            (c := _json(cp, "get", "aimkvcache", "-n", real_namespace, "kvcache-llama-chat"))
            .get("status", {})
            .get("status")
            == "Ready"
            and c
        ),
    )
    print(f"[measure] Quick Start Ready via the operator pod: {time.monotonic() - began:.1f}s")
    assert cache["status"]["status"] == "Ready"
    service = _json(cp, "get", "aimservice", "-n", real_namespace, "llama-chat")
    ready = [c for c in service["status"]["conditions"] if c["type"] == "KVCacheReady"]
    assert ready and ready[0]["status"] == "True"
    redis = _json(cp, "get", "pod", "-n", real_namespace, "kvcache-llama-chat-statefulset-0")
    assert redis["spec"]["nodeName"] == REAL_NODE_NAME


def test_the_operator_pods_secure_metrics_need_a_token_that_may_read_them(
    real_cluster: ControlPlane, installed: str
) -> None:
    cp = real_cluster
    account, reader = "scraper", "scraper-may-read-metrics"
    cp.kubectl("create", "serviceaccount", account, "-n", installed)
    # Scraped from inside an operator pod with its own interpreter (the image has no curl, and
    # the client image no TLS client): the same HTTPS endpoint and TokenReview/SAR path.
    token = cp.kubectl("create", "token", account, "-n", installed).stdout.strip()
    pod = _json(cp, "get", "pods", "-n", installed, "-l", "app.kubernetes.io/name=aimctl")["items"][
        0
    ]["metadata"]["name"]

    def scrape(bearer: str) -> str:
        code = (
            "import ssl,sys,urllib.request as u\n"
            "r=u.Request('https://127.0.0.1:8443/metrics',"
            "headers={'Authorization':'Bearer '+sys.argv[1]} if sys.argv[1] else {})\n"
            "try:\n print(u.urlopen(r,context=ssl._create_unverified_context()).status)\n"
            "except u.HTTPError as e:\n print(e.code)\n"
        )
        return cp.kubectl(
            "exec", "-n", installed, pod, "--", PYTHON, "-c", code, bearer
        ).stdout.strip()

    assert scrape("") == "401"
    assert scrape(token) == "403"
    cp.kubectl(
        "create", "clusterrolebinding", reader, "--clusterrole=aimctl-metrics-reader",
        f"--serviceaccount={installed}:{account}",
    )  # fmt: skip
    try:
        assert _wait("the binding to count", lambda: scrape(token) == "200", within=30)
    finally:
        cp.kubectl("delete", "clusterrolebinding", reader)
