"""``promtool check metrics`` on a live scrape of the operator (``aimctl run`` against the full
local cluster, reconciling the Quick Start), and the metrics the dashboard and the alerts query
are the ones that scrape shows.

The operator runs as a subprocess with ``--no-metrics-secure`` (plain HTTP on loopback): the
exposition is the same bytes either way, and the secure path's authentication is tested in
tests/integration/manager/test_manager_metrics_auth.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from aimctl.envtest import ControlPlane
from aimctl.envtest._ports import free_ports

from .test_ship_promtool_rules import RULE, dashboard_exprs, find_promtool

pytestmark = pytest.mark.full

REPO = Path(__file__).resolve().parents[3]
CRDS = sorted((REPO / "manifests" / "crds").glob("aim.silogen.ai_*.yaml"))
QUICK_START = REPO / "manifests" / "samples" / "quick-start.yaml"
CONTROLLERS = ("aimkvcache-controller", "aimservice-controller")


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_promtool()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


@pytest.fixture
def scrape(full_control_plane: ControlPlane, full_namespace: str, tmp_path: Path) -> Iterator[str]:
    """The operator's /metrics text once both controllers reconciled the Quick Start."""
    cp, ns = full_control_plane, full_namespace
    cp.install_crds(CRDS)
    docs = [d for d in yaml.safe_load_all(QUICK_START.read_text()) if d]
    for d in docs:
        d["metadata"]["namespace"] = ns
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=True, timeout=60)
    metrics, probes = free_ports(2)
    argv = [
        *(sys.executable, "-m", "aimctl", "run", "--kubeconfig", str(cp.kubeconfig)),
        *("--namespace", ns, "--log-format", "json", "--no-metrics-secure"),
        *("--metrics-bind-address", f"127.0.0.1:{metrics}"),
        *("--health-probe-bind-address", f"127.0.0.1:{probes}"),
        # Leader election on, as deployed: leader_election_master_status is exported then.
        *("--leader-elect", "--leader-election-namespace", ns),
    ]
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        url = f"http://127.0.0.1:{metrics}/metrics"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            status, text = _get(url)
            if status == 200 and _reconciled(text):
                break
            time.sleep(0.5)
        yield text
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _reconciled(text: str) -> bool:
    """Every controller has reconciled at least once and leads (so its series have samples)."""
    done = dict.fromkeys(CONTROLLERS, 0.0)
    leading = False
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "controller_runtime_reconcile_total" and s.labels["controller"] in done:
                done[s.labels["controller"]] += s.value
            if s.name == "leader_election_master_status" and s.value == 1:
                leading = True
    return leading and all(done.values())


def test_promtool_check_metrics_passes_on_a_live_scrape(promtool: str, scrape: str) -> None:
    out = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Exit 0 and no finding: promtool prints one line per lint problem (and exits 3).
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "" and out.stderr.strip() == "", out.stdout + out.stderr


def test_promtool_check_metrics_reports_a_lint_problem(promtool: str) -> None:
    """The check above has teeth: a counter without _total is what promtool reports."""
    bad = "# HELP jobs Jobs.\n# TYPE jobs counter\njobs 1\n"
    out = subprocess.run(
        [promtool, "check", "metrics"], input=bad, capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    assert 'counter metrics should have "_total" suffix' in out.stdout + out.stderr


def _families(text: str) -> dict[str, str]:
    """``# TYPE`` lines: every family the operator exports, with or without samples yet."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))


def _family_of(series: str, families: dict[str, str]) -> str | None:
    """The family a series name belongs to (a counter's TYPE line may or may not say _total)."""
    suffixes = ("_total", "_bucket", "_count", "_sum")
    candidates = [series] + [series.removesuffix(s) for s in suffixes if series.endswith(s)]
    return next((c for c in candidates if c in families), None)


def test_every_operator_metric_the_dashboard_and_alerts_query_is_in_the_scrape(
    scrape: str,
) -> None:
    families = _families(scrape)
    exprs = list(dashboard_exprs().values())
    exprs += [
        r["expr"] for g in yaml.safe_load(RULE.read_text())["spec"]["groups"] for r in g["rules"]
    ]
    ours = {
        name
        for e in exprs
        for name in re.findall(
            r"\b((?:controller_runtime|workqueue|aimctl|leader_election|rest_client)_\w+)", e
        )
    }
    assert len(ours) > 20
    missing = {n for n in ours if _family_of(n, families) is None}
    assert not missing, missing
    # And they carry the labels the panels and alerts group by.
    samples = {s.name: s.labels for f in text_string_to_metric_families(scrape) for s in f.samples}
    assert {"controller", "result"} <= samples["controller_runtime_reconcile_total"].keys()
    assert {"name", "controller"} <= samples["workqueue_depth"].keys()
    assert samples["workqueue_depth"]["name"] in CONTROLLERS  # $controller filters queues too
    assert {"kind", "scope"} <= samples["aimctl_informer_objects"].keys()
    assert "name" in samples["leader_election_master_status"]
