"""Least privilege, shown: every verb of every rule of the shipped ClusterRole and leader-election
Role is needed. For each one, the role is re-applied without it, the operator runs with the
ServiceAccount's token, and a scenario of the guide breaks with the server's 403 in the
operator's log (and the scenario's goal not reached).

The cluster is private and takes the stricter paths real clusters may take:

- ``WatchList=false``: no streaming lists, so informers LIST then WATCH (API servers before
  streaming lists, or with the gate off). With streaming lists the operator needs only ``watch``;
  ``list`` is there for these servers.
- ``OwnerReferencesPermissionEnforcement`` (OpenShift, hardened clusters): a child's
  ``blockOwnerDeletion`` needs ``update`` on its owner's ``finalizers``.

Each variant's operator watches only its own namespace (``--namespace``), holds its own lease
and is stopped before the next starts, so variants never see each other's objects. The same
verbs are needed cluster-wide; ``test_ship_deploy`` runs the shipped, cluster-wide setup.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aimctl.envtest import ControlPlane
from aimctl.envtest.pytest_plugin import private_control_plane

from .ship_env import (
    CLUSTER_ROLE,
    LEADER_ROLE,
    MANIFESTS,
    SA,
    SYSTEM_NS,
    Operator,
    apply_sample,
    caches,
    condition,
    converged,
    deploy,
    diagnose,
    dump,
    fast_ssd,
    items,
    kubectl,
    render,
    rest_get,
    sa_kubeconfig,
    sample,
    services,
)

pytestmark = pytest.mark.full

ARGS = {
    "enable-admission-plugins": "OwnerReferencesPermissionEnforcement",
    "feature-gates": "WatchList=false",
}
STEP_TIMEOUT = 30.0  # a step that works takes 1-5 s; a broken one shows its 403 within seconds
GROWN_PVC = "redis-data-shared-cache-statefulset-0"
USER = f"system:serviceaccount:{SYSTEM_NS}:{SA}"

# Which scenario exercises a verb, and the step of it that must break (the steps before it must
# still succeed). list/watch are needed before anything else: scenario "start", step "synced".
QUICK = ("quick", "converged")
SCENARIOS: dict[tuple[str, str], tuple[str, str]] = {
    ("aimkvcaches", "create"): QUICK,  # S: server-side apply of kvcache-<service>
    ("aimkvcaches", "patch"): QUICK,  # S: that apply; K: its finalizer
    ("aimkvcaches", "delete"): ("switch", "switched"),  # S drops its own cache for a shared one
    ("aimkvcaches/status", "patch"): QUICK,
    ("aimkvcaches/finalizers", "update"): QUICK,  # K's children: blockOwnerDeletion
    ("aimservices/status", "patch"): QUICK,
    ("aimservices/finalizers", "update"): QUICK,  # S's children: blockOwnerDeletion
    ("statefulsets", "create"): QUICK,
    ("statefulsets", "patch"): QUICK,
    ("statefulsets", "delete"): ("grow", "grown"),  # re-created with the bigger claim template
    ("deployments", "create"): QUICK,
    ("deployments", "patch"): QUICK,
    ("services", "create"): QUICK,
    ("services", "patch"): QUICK,
    ("configmaps", "create"): QUICK,
    ("configmaps", "patch"): QUICK,
    ("configmaps", "delete"): ("unwire", "unwired"),  # S drops kvCache: its LMCache config goes
    ("persistentvolumeclaims", "patch"): ("grow", "grown"),  # expansion
    ("secrets", "create"): QUICK,  # K: the cache's password; no Redis is started without it
    ("networkpolicies", "create"): QUICK,
    ("networkpolicies", "patch"): QUICK,
    ("events", "create"): ("events", "event"),  # Quick Start converges, but `describe` is empty
    ("events", "patch"): ("series", "series"),  # a repeated event joins its series
    ("leases", "get"): QUICK,  # never acquires: nothing reconciles
    ("leases", "create"): QUICK,
    ("leases", "update"): ("renew", "leading"),  # acquires (create), cannot renew: exit 6
    # --metrics-secure: every scrape's token is reviewed; without either right it gets a 500.
    ("tokenreviews", "create"): ("scrape", "scraped"),
    ("subjectaccessreviews", "create"): ("scrape", "scraped"),
}
CONFIRM = 2.0  # after the 403 shows, the broken step must stay unreached this long


# OwnerReferencesPermissionEnforcement words its refusal without naming the owner's resource:
# recognise it by the child that was refused (K's children of a cache, S's of a service).
def _children_refused(*children: str) -> str:
    block = r'"[^"]+" is forbidden: cannot set blockOwnerDeletion'
    return "(" + "|".join(map(re.escape, children)) + ") " + block


OWNER_REFUSALS = {
    "aimkvcaches/finalizers": _children_refused(
        "secrets", "statefulsets.apps", "services", "networkpolicies.networking.k8s.io"
    ),
    "aimservices/finalizers": _children_refused(
        "deployments.apps", "services", "configmaps", "aimkvcaches.aim.silogen.ai"
    ),
}
# Rules or verbs whose removal cannot be shown to break a scenario here, with the reason; the
# same reason is written beside the rule in manifests/rbac/. Empty: every verb is shown.
DOCUMENTED_ONLY: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Case:
    kind: str  # ClusterRole or Role
    group: str
    resource: str
    verb: str

    @property
    def scenario(self) -> str:
        return self._where[0]

    @property
    def breaks_at(self) -> str:
        return self._where[1]

    @property
    def _where(self) -> tuple[str, str]:
        if self.verb in ("list", "watch"):
            return ("start", "synced")
        return SCENARIOS[(self.resource, self.verb)]

    @property
    def forbidden(self) -> re.Pattern[str]:
        """The RBAC denial as the server words it."""
        if self.resource in OWNER_REFUSALS:
            return re.compile(OWNER_REFUSALS[self.resource])
        # The quotes may come escaped (\") where a log line quotes the server's message.
        q = r'\\?"'
        return re.compile(
            rf"cannot {self.verb} resource {q}{re.escape(self.resource)}{q} "
            rf"in API group {q}{re.escape(self.group)}{q}"
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.group or 'core'}/{self.resource} {self.verb}"


class Broken(Exception):
    """The scenario's step did not succeed and the operator's log shows the expected 403."""


def _cases(roles: dict[str, dict[str, Any]]) -> list[Case]:
    return [
        Case(kind, group, resource, verb)
        for kind in ("ClusterRole", "Role")
        for rule in roles[kind]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def _without(role: dict[str, Any], case: Case) -> dict[str, Any]:
    out = copy.deepcopy(role)
    rules = []
    for rule in out["rules"]:
        if case.resource in rule["resources"] and case.group in rule["apiGroups"]:
            assert rule["resources"] == [case.resource], "one resource per rule"
            rule["verbs"] = [v for v in rule["verbs"] if v != case.verb]
        if rule["verbs"]:
            rules.append(rule)
    out["rules"] = rules
    return out


def _apply_role(cp: ControlPlane, role: dict[str, Any]) -> None:
    kubectl(cp, "apply", "--server-side", "--force-conflicts", "-f", "-", input=dump([role]))


def _can(cp: ControlPlane, case: Case) -> bool:
    resource, _, sub = case.resource.partition("/")
    target = f"{resource}.{case.group}" if case.group else resource
    args = ["auth", "can-i", case.verb, target, f"--as={USER}", "-n", SYSTEM_NS]
    if sub:
        args.append(f"--subresource={sub}")
    return kubectl(cp, *args, check=False).stdout.strip() == "yes"


# -- scenarios -------------------------------------------------------------------------------

Step = Callable[[str, str, Callable[[], object]], None]  # (key, description, goal)


def _events(cp: ControlPlane, ns: str) -> list[dict[str, Any]]:
    return items(cp, f"/apis/events.k8s.io/v1/namespaces/{ns}/events")


def _quick(cp: ControlPlane, ns: str, step: Step) -> None:
    apply_sample(cp, "quick-start.yaml", ns)
    step(
        "converged",
        "Quick Start converged (cache Ready, service KVCacheReady and Running)",
        lambda: (
            converged(cp, ns, ["kvcache-llama-chat"], ["llama-chat"])
            and condition(services(cp, ns)["llama-chat"], "Ready").get("status") == "True"
        ),
    )


def _events_scenario(cp: ControlPlane, ns: str, step: Step) -> None:
    _quick(cp, ns, step)
    step(
        "event",
        "an Event about the cache from aimkvcache-controller",
        lambda: [
            e
            for e in _events(cp, ns)
            if e.get("reportingController") == "aimkvcache-controller"
            and e["regarding"]["name"] == "kvcache-llama-chat"
        ],
    )


def _switch(cp: ControlPlane, ns: str, step: Step) -> None:
    _quick(cp, ns, step)
    apply_sample(cp, "shared-cache.yaml", ns)
    apply_sample(cp, "shared-cache-services.yaml", ns)
    step(
        "switched",
        "llama-chat moved to shared-cache and its own cache deleted",
        lambda: (
            converged(cp, ns, ["shared-cache"], ["llama-chat", "llama-completion"])
            and "kvcache-llama-chat" not in caches(cp, ns)
        ),
    )


def _unwire(cp: ControlPlane, ns: str, step: Step) -> None:
    _quick(cp, ns, step)
    body = sample("quick-start.yaml", ns)
    for obj in body:
        if obj["kind"] == "AIMService":
            obj["spec"].pop("kvCache", None)
    kubectl(cp, "apply", "-f", "-", input=dump(body))
    step(
        "unwired",
        "llama-chat without kvCache: its LMCache ConfigMap deleted",
        lambda: rest_get(cp, f"/api/v1/namespaces/{ns}/configmaps/llama-chat-lmcache") is None,
    )


def _grow(cp: ControlPlane, ns: str, step: Step) -> None:
    apply_sample(cp, "shared-cache.yaml", ns)
    step("ready", "shared-cache Ready", lambda: converged(cp, ns, ["shared-cache"], []))
    kubectl(
        cp,
        "patch",
        "aimkvcache",
        "shared-cache",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"storage": {"size": "300Gi"}}}),
    )

    def grown() -> bool:
        pvc = rest_get(cp, f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{GROWN_PVC}")
        sts = rest_get(cp, f"/apis/apps/v1/namespaces/{ns}/statefulsets/shared-cache-statefulset")
        if pvc is None or sts is None:
            return False
        template = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
        return (
            pvc["spec"]["resources"]["requests"]["storage"] == "300Gi"
            and (pvc.get("status") or {}).get("capacity", {}).get("storage") == "300Gi"
            and template["storage"] == "300Gi"
            and converged(cp, ns, ["shared-cache"], [])
        )

    step("grown", "shared-cache grown to 300Gi (claim expanded, StatefulSet re-created)", grown)


def _series(cp: ControlPlane, ns: str, step: Step) -> None:
    apply_sample(cp, "shared-cache.yaml", ns)
    step("ready", "shared-cache Ready", lambda: converged(cp, ns, ["shared-cache"], []))

    def use(cache: str) -> None:
        probe = {
            "apiVersion": "aim.silogen.ai/v1alpha1",
            "kind": "AIMService",
            "metadata": {"name": "probe", "namespace": ns},
            "spec": {
                "model": {"image": "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"},
                "kvCache": {"name": cache},
            },
        }
        kubectl(cp, "apply", "-f", "-", input=dump([probe]))

    def not_found_events() -> list[dict[str, Any]]:
        return [
            e
            for e in _events(cp, ns)
            if e.get("reason") == "KVCacheNotFound" and e["regarding"]["name"] == "probe"
        ]

    use("missing-cache")
    step("first-event", "a KVCacheNotFound Event", not_found_events)
    use("shared-cache")
    step("kv-ready", "probe KVCacheReady", lambda: converged(cp, ns, [], ["probe"]))
    use("missing-cache")  # the same event again: it joins the first one's series
    step(
        "series",
        "the KVCacheNotFound Event counted twice (series)",
        lambda: any((e.get("series") or {}).get("count", 1) >= 2 for e in not_found_events()),
    )


def _renew(op: Operator) -> Callable[[Any, str, Step], None]:
    def scenario(cp: ControlPlane, ns: str, step: Step) -> None:
        began = time.monotonic()
        step(
            "leading",
            "leading for 11 s (past the 10 s renew deadline)",
            lambda: op.exit_code is None and op.ready() and time.monotonic() - began > 11,
        )

    return scenario


def _scrape(op: Operator, token: str) -> int:
    """GET /metrics over HTTPS with ``token``: the status (0 when nothing answers). The
    certificate is the operator's self-signed one: not verified, the token is what counts."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(
        f"https://127.0.0.1:{op.metrics_port}/metrics",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, urllib.error.URLError):
        return 0


def _scrape_scenario(op: Operator, token: str) -> Callable[[Any, str, Step], None]:
    def scenario(cp: ControlPlane, ns: str, step: Step) -> None:
        step(
            "scraped",
            "a scrape with a token bound to aimctl-metrics-reader answered 200",
            lambda: _scrape(op, token) == 200,
        )

    return scenario


def _scraper_token(cp: ControlPlane) -> str:
    """A token of a ServiceAccount bound to the shipped ClusterRole aimctl-metrics-reader."""
    kubectl(cp, "create", "serviceaccount", "rbac-scraper", "-n", SYSTEM_NS)
    kubectl(
        cp, "create", "clusterrolebinding", "rbac-scraper", "--clusterrole=aimctl-metrics-reader",
        f"--serviceaccount={SYSTEM_NS}:rbac-scraper",
    )  # fmt: skip
    return kubectl(cp, "create", "token", "rbac-scraper", "-n", SYSTEM_NS).stdout.strip()


def _extra(scenario: str) -> list[str]:
    """Flags a scenario needs: `scrape` turns the secure metrics back on (the local operator
    runs with `aimctl dev`'s plain-HTTP metrics otherwise; a later flag wins)."""
    return ["--metrics-secure"] if scenario == "scrape" else []


def _start(op: Operator) -> Callable[[Any, str, Step], None]:
    def scenario(cp: ControlPlane, ns: str, step: Step) -> None:
        step("synced", "informers synced (/readyz)", op.ready)

    return scenario


def _scenario(name: str, op: Operator, token: str) -> Callable[[ControlPlane, str, Step], None]:
    return {
        "scrape": _scrape_scenario(op, token),
        "start": _start(op),
        "quick": _quick,
        "events": _events_scenario,
        "switch": _switch,
        "grow": _grow,
        "unwire": _unwire,
        "series": _series,
        "renew": _renew(op),
    }[name]


def _evidence(cp: ControlPlane, ns: str, op: Operator) -> list[str]:
    """Where a refusal surfaces: the operator's log, the namespace's Events (the recorder), and
    the AIM objects' status (conditions, lastError)."""
    lines = op.log().splitlines()
    lines += [e.get("note") or "" for e in _events(cp, ns)]
    for obj in [*caches(cp, ns).values(), *services(cp, ns).values()]:
        status = obj.get("status") or {}
        lines.append(str(status.get("lastError") or ""))
        lines += [c.get("message") or "" for c in status.get("conditions") or []]
    return lines


def _stepper(cp: ControlPlane, ns: str, op: Operator, case: Case | None) -> Step:
    """Steps must reach their goal, except ``case``'s breaking step: that one must show the
    case's 403 (log, Events or status) and then stay unreached for ``CONFIRM`` seconds."""

    def step(key: str, what: str, goal: Callable[[], object]) -> None:
        evidence = case.forbidden if case is not None and key == case.breaks_at else None
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            if goal():
                return
            if evidence is not None:
                found = [ln for ln in _evidence(cp, ns, op) if evidence.search(ln)]
                if found:
                    confirmed = time.monotonic() + CONFIRM
                    # An operator that exited (codes 5, 6) cannot reach the goal any more.
                    while time.monotonic() < confirmed and op.exit_code is None:
                        if goal():
                            return  # the 403 did not stop it: the scenario goes on
                        time.sleep(0.2)
                    raise Broken(f"{what}: not reached; {found[0].strip()[:400]}")
            if time.monotonic() > deadline:
                expected = f"no 403 ({evidence.pattern}) either" if evidence else "(must succeed)"
                raise AssertionError(
                    f"step {key!r}: {what}: not reached in {STEP_TIMEOUT:.0f}s, {expected}\n"
                    f"{diagnose(cp, ns)}\n--- operator log ---\n"
                    + "\n".join(op.log().splitlines()[-60:])
                )
            time.sleep(0.3)

    return step


# -- the test --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rbac_cluster() -> Iterator[ControlPlane]:
    with private_control_plane(full=True, apiserver_args=ARGS) as cp:
        yield cp


def test_every_rule_of_the_shipped_roles_is_needed(
    rbac_cluster: ControlPlane, tmp_path: Path
) -> None:
    cp = rbac_cluster
    deploy(cp)
    docs = render(cp, MANIFESTS / "default")
    roles = {
        kind: next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
        for kind, name in (("ClusterRole", CLUSTER_ROLE), ("Role", LEADER_ROLE))
    }
    assert roles["ClusterRole"]["metadata"]["name"] == CLUSTER_ROLE
    assert roles["Role"]["metadata"]["name"] == LEADER_ROLE
    cases = _cases(roles)
    untested = {
        (c.resource, c.verb)
        for c in cases
        if c.verb not in ("list", "watch") and (c.resource, c.verb) not in SCENARIOS
    }
    assert untested <= DOCUMENTED_ONLY.keys(), f"rules without a scenario: {sorted(untested)}"
    kubeconfig = sa_kubeconfig(cp, tmp_path / "sa.kubeconfig")
    token = _scraper_token(cp)
    results: list[tuple[str, str, float]] = []

    fast_ssd(cp)
    # Baseline: with the shipped roles every scenario succeeds and nothing is refused.
    for name in ("quick", "events", "switch", "grow", "series", "renew", "start", "scrape"):
        began = time.monotonic()
        ns = cp.create_namespace(prefix=f"rbac-ok-{name}-")
        log = tmp_path / f"baseline-{name}.log"
        with Operator(
            kubeconfig, log, "--namespace", ns, "--leader-election-id", f"rbac-ok-{name}",
            *_extra(name),
        ) as op:  # fmt: skip
            _scenario(name, op, token)(cp, ns, _stepper(cp, ns, op, None))
            assert not op.denials(), f"baseline {name}: " + "\n".join(op.denials())
        results.append((f"baseline: {name}", "succeeded", time.monotonic() - began))

    changed: str | None = None  # the role currently applied without one verb
    for i, case in enumerate(cases):
        if (case.resource, case.verb) in DOCUMENTED_ONLY:
            continue
        began = time.monotonic()
        if changed is not None and changed != case.kind:
            _apply_role(cp, roles[changed])
        _apply_role(cp, _without(roles[case.kind], case))
        changed = case.kind
        deadline = time.monotonic() + 10
        while _can(cp, case):
            assert time.monotonic() < deadline, f"RBAC still allows {case}"
            time.sleep(0.1)
        ns = cp.create_namespace(prefix=f"rbac-{i:02d}-")
        log = tmp_path / f"variant-{i:02d}.log"
        # The elector logs a refused lease creation at debug level only.
        extra = ["--log-level", "debug"] if case.kind == "Role" else []
        extra += _extra(case.scenario)
        with Operator(
            kubeconfig, log, "--namespace", ns, "--leader-election-id", f"rbac-{i:02d}", *extra
        ) as op:
            step = _stepper(cp, ns, op, case)
            try:
                _scenario(case.scenario, op, token)(cp, ns, step)
            except Broken as broken:
                evidence = str(broken)
            else:
                pytest.fail(f"{case}: removed, yet scenario {case.scenario!r} succeeded")
            expected_exit = {"start": 5, "renew": 6}.get(case.scenario)
            if expected_exit is not None:
                deadline = time.monotonic() + 30
                while op.exit_code is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert op.exit_code == expected_exit, f"{case}: exit {op.exit_code}\n{op.log()}"
                evidence += f"; exit code {op.exit_code}"
            if case.scenario == "start":
                # Exactly one line says why (a fatal error is logged once, in the log format).
                (said,) = [
                    ln for ln in op.log().splitlines() if "caches did not sync: informer for" in ln
                ]
                assert f'resource "{case.resource}"' in said.replace('\\"', '"'), said
        results.append((str(case), evidence, time.monotonic() - began))
    if changed is not None:
        _apply_role(cp, roles[changed])

    report = "\n".join(f"{c:55} {t:5.1f}s  {e}" for c, e, t in results)
    print(f"\nEach verb removed in turn broke its scenario:\n{report}")
    print(f"documented only: {DOCUMENTED_ONLY or 'none'}")
