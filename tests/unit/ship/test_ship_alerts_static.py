"""The shipped PrometheusRule, Grafana dashboard and ServiceMonitor, read as files.

What promtool cannot tell (it runs in tests/integration/ship/test_ship_promtool_*.py, which also
parses every expression): that every metric name we query is one something exports (our
manager's registry, or the exporters' lists cited below), that the cache alerts select the names
the kvcache reconciler renders, that every alert has a firing and a quiet ``promtool test
rules`` case, and that the dashboard is a Grafana dashboard with its data source as a variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from aimctl.client import ClusterConfig
from aimctl.controller._metrics import controller_metrics
from aimctl.informers._metrics import InformerMetrics
from aimctl.manager import LeaderElectionConfig, Manager
from aimctl.reconcilers.kvcache._desired import pvc_name, statefulset_name
from aimctl.workqueue._metrics import register_queue_metrics

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"
RULE = MANIFESTS / "prometheus" / "rules" / "aimctl-alerts.yaml"
RULE_TESTS = MANIFESTS / "prometheus" / "rules" / "tests" / "aimctl-alerts_test.yaml"
DASHBOARD = MANIFESTS / "grafana" / "aimctl-dashboard.json"
MONITOR = MANIFESTS / "prometheus" / "monitor" / "monitor.yaml"
METRICS_SERVICE = MANIFESTS / "manager" / "metrics_service.yaml"
OPERATOR_JOB = "aimctl-controller-manager-metrics"

# Metrics other programs export, by the name we query (each list is what we use, not all).
# oliver006/redis_exporter v1.80.0 (the sidecar's default image), exporter/exporter.go:
# metricMapGauges / metricMapCounters / metricDescriptions and Collect's "up", every name
# prefixed redis_ (the exporter's namespace).
REDIS_EXPORTER = {
    "redis_up",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_evicted_keys_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_db_keys",
    "redis_connected_clients",
    "redis_rdb_last_bgsave_status",
}
# kubernetes v1.36.3 pkg/kubelet/metrics/metrics.go (KubeletSubsystem + VolumeStats*Key).
KUBELET = {"kubelet_volume_stats_used_bytes", "kubelet_volume_stats_capacity_bytes"}
# google/cadvisor v0.56.2 metrics/prometheus.go (served by the kubelet on /metrics/cadvisor).
CADVISOR = {"container_memory_working_set_bytes"}
# kubernetes/kube-state-metrics docs/metrics/workload/{statefulset,pod}-metrics.md (STABLE).
KUBE_STATE_METRICS = {
    "kube_statefulset_status_replicas_ready",
    "kube_statefulset_replicas",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_resource_limits",
}
PROMETHEUS = {"up"}  # the scrape's own series
EXTERNAL = REDIS_EXPORTER | KUBELET | CADVISOR | KUBE_STATE_METRICS | PROMETHEUS


class _Queue:
    """A MetricsSource with nothing in it: enough to register the workqueue families."""

    def due(self) -> int:
        return 0

    def retries_total(self) -> int:
        return 0

    def depth_by_priority(self) -> Mapping[int, int]:
        return {0: 0}

    def processing_ages(self) -> Iterable[float]:
        return ()


def _exported_names(registry: CollectorRegistry) -> set[str]:
    """The series names a scrape of ``registry`` can show (counter: _total, histogram: ...)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    names: set[str] = set()
    for family in registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


@pytest.fixture(scope="module")
def our_metrics() -> set[str]:
    """Every name the operator's manager exports: its registry as ``aimctl run`` builds it
    (leader election on), plus the families controllers, queues and informers add to it."""
    config = ClusterConfig(
        host="https://127.0.0.1:1",
        ssl_context=None,
        tls_server_name=None,
        proxy=None,
        configuration=None,
    )
    election = LeaderElectionConfig(namespace="aimctl-system", name="lock", identity="me")
    manager = Manager(config, leader_election=election)
    controller_metrics(manager.registry)
    InformerMetrics.for_registry(manager.registry)
    register_queue_metrics(manager.registry, "q", _Queue())
    return _exported_names(manager.registry)


# --- PromQL, read just enough to find metric names ------------------------------------------
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not function calls,
    keywords, label names in by/on lists, matchers, ranges, strings or Grafana variables."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = _LABEL_LISTS.sub(" ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end() :].lstrip().startswith("(") or m.group(0) in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def test_metric_names_reads_selectors_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (controller, le) (rate(a_bucket{x="y"}[5m]))) > 1e3 '
        'and on (namespace) b offset 5m or label_replace(c, "d", "$1", "e", "(.+)") '
        'unless sum without (db) (f{g=~"$h"}[$__rate_interval])'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "f"}


# --- the PrometheusRule ---------------------------------------------------------------------
def _rule() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(RULE.read_text())
    return doc


def _alerts() -> list[dict[str, Any]]:
    return [r for g in _rule()["spec"]["groups"] for r in g["rules"]]


def test_the_rule_is_a_prometheusrule_of_alerts_only() -> None:
    rule = _rule()
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["namespace"] == "aimctl-system"
    names = [a.get("alert") for a in _alerts()]
    assert None not in names, "only alerting rules (no recording rules to keep in sync)"
    assert len(set(names)) == len(names)
    assert set(names) >= {
        "AimctlOperatorDown",
        "AimctlNoLeader",
        "AimctlReconcileErrors",
        "AimctlWorkqueueBackingUp",
        "AIMKVCacheNotReady",
        "AIMKVCachePVCNearlyFull",
        "AIMKVCacheEvictingHard",
        "AIMKVCacheOOMKilled",
    }


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_every_alert_says_how_bad_and_what_to_do(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"warning", "critical"}
    assert alert["annotations"]["summary"].strip()
    assert len(alert["annotations"]["description"]) > 60
    # Only the OOM kill is an event (its restart window already filters); the rest need
    # the condition to hold so a blip does not page.
    assert "for" in alert or alert["alert"] == "AIMKVCacheOOMKilled"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_every_metric_an_alert_queries_is_exported(
    alert: dict[str, Any], our_metrics: set[str]
) -> None:
    names = metric_names(alert["expr"])
    assert names
    assert names <= our_metrics | EXTERNAL, names - our_metrics - EXTERNAL


def test_operator_alerts_select_the_job_the_servicemonitor_scrapes() -> None:
    # The Prometheus Operator names a ServiceMonitor's job after the Service it scrapes.
    service = yaml.safe_load(METRICS_SERVICE.read_text())
    assert service["metadata"]["name"] == OPERATOR_JOB
    for alert in _alerts():
        if alert["alert"].startswith("Aimctl"):
            for selector in re.findall(r"\w+\{[^}]*\}", alert["expr"]):
                assert f'job="{OPERATOR_JOB}"' in selector, (alert["alert"], selector)


def test_cache_alerts_select_the_objects_the_kvcache_reconciler_renders() -> None:
    exprs = {a["alert"]: a["expr"] for a in _alerts()}
    sts = re.findall(r'statefulset=~"([^"]+)"', exprs["AIMKVCacheNotReady"])
    pvc = re.findall(r'persistentvolumeclaim=~"([^"]+)"', exprs["AIMKVCachePVCNearlyFull"])
    pod = re.findall(r'pod=~"([^"]+)"', exprs["AIMKVCacheOOMKilled"])
    assert sts and pvc and pod
    for cache in ("c1", "llama-70b-cache"):
        assert all(re.fullmatch(r, statefulset_name(cache)) for r in sts)
        assert all(re.fullmatch(r, pvc_name(cache)) for r in pvc)
        assert all(re.fullmatch(r, f"{statefulset_name(cache)}-0") for r in pod)
    # label_replace gets the cache's name back from each.
    for expr, value in (
        (exprs["AIMKVCacheNotReady"], statefulset_name("c1")),
        (exprs["AIMKVCachePVCNearlyFull"], pvc_name("c1")),
        (exprs["AIMKVCacheOOMKilled"], f"{statefulset_name('c1')}-0"),
    ):
        (regex,) = re.findall(r'"aimkvcache", "\$1", "\w+", "([^"]+)"', expr)
        match = re.fullmatch(regex, value)
        assert match and match.group(1) == "c1"
    # redis_exporter series: the label the shipped PodMonitor's relabeling adds.
    podmonitor = yaml.safe_load((MANIFESTS / "prometheus" / "kvcache-podmonitor.yaml").read_text())
    (endpoint,) = podmonitor["spec"]["podMetricsEndpoints"]
    assert {"targetLabel": "aimkvcache"}.items() <= endpoint["relabelings"][0].items()
    for name in ("AIMKVCacheEvictingHard", "AIMKVCacheRedisDown"):
        assert all('aimkvcache!=""' in s for s in re.findall(r"redis_\w+\{[^}]*\}", exprs[name]))


def _rule_test_groups() -> Iterator[tuple[str, list[tuple[str, bool]]]]:
    """(group name, [(alertname, expected to fire)]) for every promtool test group."""
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        checks = case.get("alert_rule_test", [])
        yield case["name"], [(c["alertname"], bool(c.get("exp_alerts"))) for c in checks]


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()  # a group that checks the alert and never expects it to fire
    names = [name for name, _ in _rule_test_groups()]
    assert len(set(names)) == len(names)  # promtool reports failures by group name
    for _, checks in _rule_test_groups():
        fires = {alert for alert, expected in checks if expected}
        firing |= fires
        quiet |= {alert for alert, _ in checks} - fires
    alerts = {a["alert"] for a in _alerts()}
    assert alerts <= firing, alerts - firing
    assert alerts <= quiet, alerts - quiet
    tested = firing | quiet
    assert tested <= alerts, tested - alerts  # no test of an alert that no longer exists


def test_the_rules_component_is_part_of_manifests_prometheus() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "prometheus" / "kustomization.yaml").read_text())
    assert set(kustomization["components"]) >= {"monitor", "rules"}
    component = yaml.safe_load((RULE.parent / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert component["resources"] == [RULE.name]


# --- the ServiceMonitor ---------------------------------------------------------------------
def test_the_servicemonitor_scrapes_https_with_the_service_account_token() -> None:
    monitor = yaml.safe_load(MONITOR.read_text())
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "https"
    assert endpoint["scheme"] == "https"
    assert endpoint["path"] == "/metrics"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    # Self-signed unless a certificate is mounted: nothing to verify against (see the comment).
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}


# --- the dashboard --------------------------------------------------------------------------
def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _targets() -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in _panels() for t in p["targets"]]


def test_the_dashboard_is_grafana_json_with_the_data_source_as_a_variable() -> None:
    d = _dashboard()
    assert d["uid"] and d["title"] and isinstance(d["schemaVersion"], int)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ds = {"type": "prometheus", "uid": "${datasource}"}
    ids = [p["id"] for p in d["panels"]]
    assert len(set(ids)) == len(ids)
    for p in _panels():
        assert p["datasource"] == ds, p["title"]
        assert p["type"] in {"timeseries", "stat"}
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(set(refs)) == len(refs), p["title"]
        assert all(t["datasource"] == ds for t in p["targets"]), p["title"]
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == ds


def test_every_dashboard_variable_used_is_defined() -> None:
    defined = {v["name"] for v in _dashboard()["templating"]["list"]}
    builtin = {"__rate_interval", "__interval", "__range"}
    texts = [t["expr"] for _, t in _targets()]
    texts += [
        v["query"]["query"] for v in _dashboard()["templating"]["list"] if v["type"] == "query"
    ]
    used = {m for text in texts for m in re.findall(r"\$\{?(\w+)\}?", text)} - {"1"}
    assert used <= defined | builtin, used - defined - builtin


def test_every_metric_the_dashboard_queries_is_exported(our_metrics: set[str]) -> None:
    used: set[str] = set()
    for title, target in _targets():
        names = metric_names(target["expr"])
        assert names, title
        used |= names
    assert used <= our_metrics | EXTERNAL, used - our_metrics - EXTERNAL


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    exprs = " ".join(t["expr"] for _, t in _targets())
    for needed in (
        # controller-runtime
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds_bucket",
        "controller_runtime_active_workers",
        "controller_runtime_max_concurrent_reconciles",
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_queue_duration_seconds_bucket",
        "workqueue_work_duration_seconds_bucket",
        "workqueue_retries_total",
        "workqueue_longest_running_processor_seconds",
        "leader_election_master_status",
        # aimctl's informers
        "aimctl_informer_objects",
        "aimctl_informer_synced",
        "aimctl_informer_relists_total",
        "aimctl_informer_watch_errors_total",
        "aimctl_informer_last_resource_version_age_seconds",
        # the caches
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_evicted_keys_total",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "kubelet_volume_stats_used_bytes",
        "kubelet_volume_stats_capacity_bytes",
    ):
        assert needed in exprs, needed
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


def test_the_dashboard_kustomization_labels_the_configmap_for_the_grafana_sidecar() -> None:
    k = yaml.safe_load((DASHBOARD.parent / "kustomization.yaml").read_text())
    (gen,) = k["configMapGenerator"]
    assert gen["files"] == [DASHBOARD.name]
    assert gen["options"]["labels"]["grafana_dashboard"] == "1"
    assert gen["options"]["disableNameSuffixHash"] is True
