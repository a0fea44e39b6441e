"""The shipped ServiceMonitor, PodMonitor and PrometheusRule against the Prometheus Operator's own
CRD schemas, on the real apiserver: a misspelt or misplaced field (``bearerTokenFile`` at the
wrong level, ``tlsConfig`` typos, a rule without ``expr``) is refused by strict field validation
instead of being pruned silently when a cluster applies it.

The CRDs come from the Go module github.com/prometheus-operator/prometheus-operator
(example/prometheus-operator-crd/), fetched and pinned by hack/promtool.sh next to promtool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aimctl.envtest import ControlPlane

from .ship_env import unavailable
from .test_ship_promtool_rules import find_promtool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS = REPO / "manifests" / "prometheus"
OBJECTS = {
    "ServiceMonitor": PROMETHEUS / "monitor" / "monitor.yaml",
    "PrometheusRule": PROMETHEUS / "rules" / "aimctl-alerts.yaml",
    "PodMonitor": PROMETHEUS / "kvcache-podmonitor.yaml",
}


@pytest.fixture(scope="module")
def monitoring(control_plane: ControlPlane) -> ControlPlane:
    """The session's apiserver with the monitoring.coreos.com CRDs the shipped objects use."""
    crds = Path(find_promtool()).parent / "crds"
    if not crds.is_dir():
        unavailable(
            f"no Prometheus Operator CRDs in {crds} (PROMTOOL set: hack/promtool.sh not used)"
        )
    control_plane.install_crds(sorted(crds.glob("monitoring.coreos.com_*.yaml")))
    return control_plane


def _in(namespace: str, path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_the_shipped_object_is_valid_for_its_crd(
    monitoring: ControlPlane, namespace: str, kind: str
) -> None:
    doc = _in(namespace, OBJECTS[kind])
    assert doc["kind"] == kind
    out = monitoring.kubectl(
        *("apply", "--server-side", "--validate=strict", "-f", "-"),
        input=yaml.safe_dump(doc),
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "Warning" not in out.stderr, out.stderr
    # Stored as written (the schema's defaults added, e.g. a relabeling's action: replace):
    # nothing pruned, which a structural schema does silently to fields it does not know.
    got = yaml.safe_load(
        monitoring.kubectl(
            "get",
            kind.lower(),
            "-n",
            namespace,
            doc["metadata"]["name"],
            "-o",
            "yaml",
            check=True,
            timeout=60,
        ).stdout
    )
    assert _contains(got["spec"], doc["spec"]), (got["spec"], doc["spec"])


def _contains(got: Any, want: Any) -> bool:
    """``want`` is ``got`` minus fields the server added (mappings compared key by key)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(
            k in got and _contains(got[k], v) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(_contains(g, w) for g, w in zip(got, want, strict=True))
        )
    return bool(got == want)


def test_a_misplaced_field_is_refused(monitoring: ControlPlane, namespace: str) -> None:
    """What the check above catches: the token file one level too high, as a typo would put it."""
    doc = _in(namespace, OBJECTS["ServiceMonitor"])
    endpoint = doc["spec"]["endpoints"][0]
    doc["spec"]["bearerTokenFile"] = endpoint.pop("bearerTokenFile")
    out = monitoring.kubectl(
        *("apply", "--server-side", "--validate=strict", "-f", "-"),
        input=yaml.safe_dump(doc),
        check=False,
        timeout=60,
    )
    assert out.returncode != 0
    assert ".spec.bearerTokenFile: field not declared in schema" in out.stderr, out.stderr
