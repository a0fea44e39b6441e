"""manifests/tenancy on a real kube-apiserver: the editor role and the aimctl-tenancy
ValidatingAdmissionPolicy, as a tenant bound only to ``aimservice-editor`` (or
``aimkvcache-editor``) in namespace A meets them.

The policy is enforced by the API server itself (no operator runs here), so a plain envtest
control plane of this module's own is enough: the policy and its binding are cluster-wide and
would refuse other modules' objects on a shared one. Every refusal is compared to the exact
message the policy writes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from aimctl.envtest import ControlPlane, User, run_kubectl
from aimctl.envtest.pytest_plugin import private_control_plane

from .ship_env import MANIFESTS, kubectl, render, wait_for

POLICY = "aimctl-tenancy"
PARAMS = "aimctl-tenancy-params"
SYSTEM_NS = "aimctl-system"
DENIED = f"ValidatingAdmissionPolicy '{POLICY}' with binding '{POLICY}' denied request: "
ALLOWED_PREFIXES = "ghcr.io/silogen/,docker.io/library/redis:,docker.io/oliver006/redis_exporter:"
MODEL = "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"
OPERATOR = f"system:serviceaccount:{SYSTEM_NS}:aimctl-controller-manager"


def secret_refused(user: str, secret: str, ns: str, kind: str = "AIMService") -> str:
    return (
        f"user {user} may not get Secret {secret} in namespace {ns}: an {kind} passes the"
        " Secrets it references to its pods, so it may only reference Secrets its author may get"
    )


def image_refused(*images: str) -> str:
    return (
        f"image {', '.join(images)} is not allowed: images must start with one of"
        " ghcr.io/silogen/, docker.io/library/redis:, docker.io/oliver006/redis_exporter:"
        f" (allowedImagePrefixes in ConfigMap {SYSTEM_NS}/{PARAMS})"
    )


@dataclass(frozen=True)
class Tenancy:
    cp: ControlPlane
    ns_a: str
    ns_b: str
    alice: User  # aimservice-editor in A
    bob: User  # aimkvcache-editor in A

    def as_user(
        self, user: User, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The pinned kubectl with ``user``'s client certificate."""
        return run_kubectl(
            self.cp.assets.path("kubectl"), user.kubeconfig, *args, input=input, check=False
        )

    def create(self, user: User, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.as_user(user, "create", "-f", "-", input=json.dumps(obj))


def service(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"model": {"image": MODEL}, **spec},
    }


def cache(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def secret_env(var: str, secret: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}


def refusal(out: subprocess.CompletedProcess[str]) -> str:
    """The policy's message in a refused kubectl call (fails when it was not refused so)."""
    assert out.returncode != 0, f"expected a refusal, got: {out.stdout}"
    assert DENIED in out.stderr, out.stderr
    return out.stderr.split(DENIED, 1)[1].strip()


def until_ok(
    what: str, run: Callable[[], subprocess.CompletedProcess[str]]
) -> subprocess.CompletedProcess[str]:
    """Repeat ``run`` until it succeeds (an RBAC change reaches the authorizer asynchronously)."""
    return wait_for(what, lambda: o if (o := run()).returncode == 0 else None, timeout=30)


def make_secret(cp: ControlPlane, ns: str, name: str) -> None:
    kubectl(cp, "-n", ns, "create", "secret", "generic", name, "--from-literal=k=v")


@pytest.fixture(scope="module")
def tenancy() -> Iterator[Tenancy]:
    with private_control_plane() as cp:
        cp.install_crds([MANIFESTS / "crds"])
        cp.create_namespace(SYSTEM_NS)
        kubectl(cp, "apply", "--server-side", "-k", str(MANIFESTS / "tenancy"))
        ns_a, ns_b = (
            cp.create_namespace(prefix="tenant-a-"),
            cp.create_namespace(prefix="tenant-b-"),
        )
        alice, bob = cp.add_user("alice", ["tenants"]), cp.add_user("bob", ["tenants"])
        kubectl(
            cp,
            "-n",
            ns_a,
            "create",
            "rolebinding",
            "alice-services",
            "--clusterrole=aimservice-editor",
            "--user=alice",
        )
        kubectl(
            cp,
            "-n",
            ns_a,
            "create",
            "rolebinding",
            "bob-caches",
            "--clusterrole=aimkvcache-editor",
            "--user=bob",
        )
        t = Tenancy(cp, ns_a, ns_b, alice, bob)
        # The API server compiles a new policy and reads its binding and params asynchronously:
        # wait until a known-bad object (server-side dry run) is refused.
        bad = service("probe", ns_a, kvCache={"type": "redis", "image": "quay.io/x/redis:7"})
        wait_for(
            "the policy to be enforced",
            lambda: (
                DENIED
                in t.as_user(
                    alice, "create", "--dry-run=server", "-f", "-", input=json.dumps(bad)
                ).stderr
            ),
            timeout=60,
        )
        yield t


def test_manifests_are_the_four_roles_and_the_policy(tenancy: Tenancy) -> None:
    docs = {
        (d["kind"], d["metadata"]["name"]): d for d in render(tenancy.cp, MANIFESTS / "tenancy")
    }
    assert set(docs) == {
        ("ClusterRole", "aimservice-editor"),
        ("ClusterRole", "aimservice-viewer"),
        ("ClusterRole", "aimkvcache-editor"),
        ("ClusterRole", "aimkvcache-viewer"),
        ("ValidatingAdmissionPolicy", POLICY),
        ("ValidatingAdmissionPolicyBinding", POLICY),
        ("ConfigMap", PARAMS),
    }
    for plural in ("aimservices", "aimkvcaches"):
        editor = docs[("ClusterRole", f"{plural[:-1]}-editor")]
        viewer = docs[("ClusterRole", f"{plural[:-1]}-viewer")]
        assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
        assert (
            editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
        )
        assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
        verbs = {r["resources"][0]: set(r["verbs"]) for r in editor["rules"]}
        assert verbs == {
            plural: {"create", "delete", "get", "list", "patch", "update", "watch"},
            f"{plural}/status": {"get"},
        }
        verbs = {r["resources"][0]: set(r["verbs"]) for r in viewer["rules"]}
        assert verbs == {plural: {"get", "list", "watch"}, f"{plural}/status": {"get"}}
    assert docs[("ConfigMap", PARAMS)]["data"] == {"allowedImagePrefixes": ALLOWED_PREFIXES}


def test_editor_creates_a_service_without_secret_references(tenancy: Tenancy) -> None:
    out = tenancy.create(tenancy.alice, service("plain", tenancy.ns_a, kvCache={"type": "redis"}))
    assert out.returncode == 0, out.stderr
    # ...and reads it back; the viewer-level verbs are part of the editor role.
    assert (
        tenancy.as_user(tenancy.alice, "-n", tenancy.ns_a, "get", "aimservice", "plain").returncode
        == 0
    )


@pytest.mark.parametrize(
    ("where", "spec", "secret"),
    [
        ("env secretKeyRef", {"env": [secret_env("DB", "db-a")]}, "db-a"),
        (
            "the own cache's env",
            {"kvCache": {"type": "redis", "env": [secret_env("X", "db-b")]}},
            "db-b",
        ),
        (
            "the own cache's imagePullSecrets",
            {"kvCache": {"type": "redis", "imagePullSecrets": [{"name": "pull-c"}]}},
            "pull-c",
        ),
        # A shared cache's password Secret <name>-auth goes to the service's pods.
        ("kvCache.name", {"kvCache": {"name": "team-cache"}}, "team-cache-auth"),
    ],
)
def test_editor_cannot_reference_a_secret_it_cannot_read(
    tenancy: Tenancy, where: str, spec: dict[str, Any], secret: str
) -> None:
    make_secret(tenancy.cp, tenancy.ns_a, secret)
    name = f"ref-{secret}"
    out = tenancy.create(tenancy.alice, service(name, tenancy.ns_a, **spec))
    assert refusal(out) == secret_refused("alice", secret, tenancy.ns_a), where
    # Granted get on that one Secret (by name), the same object is admitted.
    kubectl(
        tenancy.cp,
        "-n",
        tenancy.ns_a,
        "create",
        "role",
        f"get-{secret}",
        "--verb=get",
        "--resource=secrets",
        f"--resource-name={secret}",
    )
    kubectl(
        tenancy.cp,
        "-n",
        tenancy.ns_a,
        "create",
        "rolebinding",
        f"alice-{secret}",
        f"--role=get-{secret}",
        "--user=alice",
    )
    out = until_ok(
        "alice's new grant to reach the authorizer",
        lambda: tenancy.create(tenancy.alice, service(name, tenancy.ns_a, **spec)),
    )
    assert f"aimservice.aim.silogen.ai/{name} created" in out.stdout


def test_the_message_names_the_first_unreadable_secret_and_the_rest(tenancy: Tenancy) -> None:
    ns = tenancy.ns_a
    readable = [f"ok-{i}" for i in range(4)]
    for s in readable:
        make_secret(tenancy.cp, ns, s)
    kubectl(
        tenancy.cp,
        "-n",
        ns,
        "create",
        "role",
        "get-ok",
        "--verb=get",
        "--resource=secrets",
        *(f"--resource-name={s}" for s in readable),
    )
    kubectl(
        tenancy.cp, "-n", ns, "create", "rolebinding", "alice-ok", "--role=get-ok", "--user=alice"
    )
    # Two variables naming the same Secret, then an unreadable one: the message names it once.
    env = [secret_env("A", "ok-0"), secret_env("B", "hidden"), secret_env("C", "hidden")]
    out = tenancy.create(tenancy.alice, service("second", ns, env=env))
    assert refusal(out) == secret_refused("alice", "hidden", ns)
    # The eighth position is still named (one validation per position).
    env = [secret_env(f"V{i}", s) for i, s in enumerate([*readable, *readable[:3], "hidden"])]
    out = tenancy.create(tenancy.alice, service("eighth", ns, env=env))
    assert refusal(out) == secret_refused("alice", "hidden", ns)
    # More than eight added references are refused as such (a CEL expression may call the
    # authorizer only twice, so there is one validation per position).
    env = [secret_env(f"V{i}", s) for i, s in enumerate([*readable, *readable, "ok-0"])]
    out = tenancy.create(tenancy.alice, service("ninth", ns, env=env))
    assert refusal(out) == (
        "user alice adds 9 Secret references to this AIMService (ok-0, ok-1, ok-2, ok-3, ok-0,"
        " ok-1, ok-2, ok-3, ok-0); policy aimctl-tenancy checks at most 8 per write unless its"
        f" author may list Secrets in namespace {ns}: add them in several writes"
    )
    # Eight are fine.
    out = tenancy.create(tenancy.alice, service("eight", ns, env=env[:8]))
    assert out.returncode == 0, out.stderr


def test_a_user_who_may_list_secrets_may_reference_any(tenancy: Tenancy) -> None:
    # The operator's own ClusterRole lists Secrets (never gets them): the AIMKVCache it creates
    # for a service, carrying the service's imagePullSecrets, is admitted.
    kubectl(tenancy.cp, "apply", "--server-side", "-k", str(MANIFESTS / "rbac"))
    obj = cache("kvcache-op", tenancy.ns_a, imagePullSecrets=[{"name": "nobody-may-get"}])
    out = until_ok(
        "the operator's ClusterRole to reach the authorizer",
        lambda: run_kubectl(
            tenancy.cp.assets.path("kubectl"),
            tenancy.cp.kubeconfig,
            f"--as={OPERATOR}",
            "create",
            "-f",
            "-",
            input=json.dumps(obj),
            check=False,
        ),
    )
    assert "aimkvcache.aim.silogen.ai/kvcache-op created" in out.stdout


def test_editor_cannot_write_status(tenancy: Tenancy) -> None:
    ns = tenancy.ns_a
    assert tenancy.create(tenancy.alice, service("status", ns)).returncode == 0
    patch = json.dumps({"status": {"status": "Ready"}})
    out = tenancy.as_user(
        tenancy.alice,
        "-n",
        ns,
        "patch",
        "aimservice",
        "status",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    )
    assert out.returncode != 0
    assert (
        f'aimservices.aim.silogen.ai "status" is forbidden: User "alice" cannot patch resource'
        f' "aimservices/status" in API group "aim.silogen.ai" in the namespace "{ns}"'
    ) in out.stderr
    # ...while the spec is theirs to change.
    out = tenancy.as_user(
        tenancy.alice,
        "-n",
        ns,
        "patch",
        "aimservice",
        "status",
        "--type=merge",
        "-p",
        '{"spec":{"replicas":2}}',
    )
    assert out.returncode == 0, out.stderr
    # The same for the cache editor.
    assert tenancy.create(tenancy.bob, cache("status-cache", ns)).returncode == 0
    out = tenancy.as_user(
        tenancy.bob,
        "-n",
        ns,
        "patch",
        "aimkvcache",
        "status-cache",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    )
    assert 'cannot patch resource "aimkvcaches/status"' in out.stderr


def test_editor_can_do_nothing_in_another_namespace(tenancy: Tenancy) -> None:
    ns_b = tenancy.ns_b
    for verb in ("create", "get", "list", "watch", "update", "patch", "delete"):
        for resource in ("aimservices", "aimkvcaches", "aimservices/status", "secrets"):
            out = tenancy.as_user(tenancy.alice, "auth", "can-i", verb, resource, "-n", ns_b)
            assert out.stdout.strip() == "no", (verb, resource)
    out = tenancy.create(tenancy.alice, service("elsewhere", ns_b))
    assert (
        'aimservices.aim.silogen.ai is forbidden: User "alice" cannot create resource'
        f' "aimservices" in API group "aim.silogen.ai" in the namespace "{ns_b}"'
    ) in out.stderr
    # And in A only its own kind: alice may not create caches, bob may not create services.
    out = tenancy.create(tenancy.alice, cache("not-mine", tenancy.ns_a))
    assert 'cannot create resource "aimkvcaches"' in out.stderr
    out = tenancy.create(tenancy.bob, service("not-mine", tenancy.ns_a))
    assert 'cannot create resource "aimservices"' in out.stderr


@pytest.mark.parametrize(
    ("user", "obj", "images"),
    [
        (
            "alice",
            service("img-model", "{ns}", model={"image": "docker.io/evil/llm:1"}),
            ["docker.io/evil/llm:1"],
        ),
        (
            "alice",
            service(
                "img-cache",
                "{ns}",
                kvCache={
                    "type": "redis",
                    "image": "redis:7.2",
                    "metrics": {"enabled": True, "image": "quay.io/x/exporter:1"},
                },
            ),
            ["redis:7.2", "quay.io/x/exporter:1"],
        ),
        # "docker.io/library/redis:" is a prefix of every redis tag, not of another repository.
        (
            "bob",
            cache("img-redis", "{ns}", image="docker.io/library/redis-evil:7"),
            ["docker.io/library/redis-evil:7"],
        ),
        (
            "bob",
            cache(
                "img-exporter", "{ns}", metrics={"enabled": True, "image": "ghcr.io/other/exp:1"}
            ),
            ["ghcr.io/other/exp:1"],
        ),
    ],
)
def test_an_image_outside_the_allow_list_is_refused(
    tenancy: Tenancy, user: str, obj: dict[str, Any], images: list[str]
) -> None:
    obj = json.loads(json.dumps(obj).replace("{ns}", tenancy.ns_a))
    who = tenancy.alice if user == "alice" else tenancy.bob
    assert refusal(tenancy.create(who, obj)) == image_refused(*images)


def test_allowed_images_pass(tenancy: Tenancy) -> None:
    ns = tenancy.ns_a
    obj = cache(
        "img-ok",
        ns,
        image="docker.io/library/redis:7.2.12",
        metrics={"enabled": True, "image": "docker.io/oliver006/redis_exporter:v1.80.0"},
    )
    out = tenancy.create(tenancy.bob, obj)
    assert out.returncode == 0, out.stderr


def test_an_update_is_checked_only_for_what_it_adds(tenancy: Tenancy) -> None:
    cp, ns = tenancy.cp, tenancy.ns_a
    make_secret(cp, ns, "admins-only")
    # An administrator references a Secret alice may not read, with an image the list lacks
    # (admitted while the params allowed it).
    params = ["-n", SYSTEM_NS, "patch", "configmap", PARAMS, "--type=merge", "-p"]
    widened = json.dumps({"data": {"allowedImagePrefixes": ALLOWED_PREFIXES + ",quay.io/team/"}})
    restored = json.dumps({"data": {"allowedImagePrefixes": ALLOWED_PREFIXES}})
    obj = service(
        "inherited", ns, model={"image": "quay.io/team/llm:1"}, env=[secret_env("S", "admins-only")]
    )
    kubectl(cp, *params, widened)
    try:
        wait_for(
            "the widened allow-list to be used",
            lambda: (
                kubectl(cp, "create", "-f", "-", input=json.dumps(obj), check=False).returncode == 0
            ),
            timeout=60,
        )
    finally:
        kubectl(cp, *params, restored)
    probe = service("probe-quay", ns, model={"image": "quay.io/team/llm:1"})
    wait_for(
        "the restored allow-list to be used",
        lambda: (
            DENIED
            in kubectl(
                cp, "create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False
            ).stderr
        ),
        timeout=60,
    )
    # alice's unrelated edit passes: the Secret and the image were there before.
    out = tenancy.as_user(
        tenancy.alice,
        "-n",
        ns,
        "patch",
        "aimservice",
        "inherited",
        "--type=merge",
        "-p",
        '{"spec":{"replicas":3}}',
    )
    assert out.returncode == 0, out.stderr
    # What an update adds is checked like a create.
    add = json.dumps({"spec": {"kvCache": {"name": "other-cache"}}})
    out = tenancy.as_user(
        tenancy.alice, "-n", ns, "patch", "aimservice", "inherited", "--type=merge", "-p", add
    )
    assert refusal(out) == secret_refused("alice", "other-cache-auth", ns)
    swap = json.dumps({"spec": {"model": {"image": "quay.io/team/llm:2"}}})
    out = tenancy.as_user(
        tenancy.alice, "-n", ns, "patch", "aimservice", "inherited", "--type=merge", "-p", swap
    )
    assert refusal(out) == image_refused("quay.io/team/llm:2")


def test_cache_editor_meets_the_same_secret_check(tenancy: Tenancy) -> None:
    ns = tenancy.ns_a
    for secret in ("cache-env", "cache-pull"):
        make_secret(tenancy.cp, ns, secret)
    out = tenancy.create(tenancy.bob, cache("c-env", ns, env=[secret_env("X", "cache-env")]))
    assert refusal(out) == secret_refused("bob", "cache-env", ns, kind="AIMKVCache")
    out = tenancy.create(
        tenancy.bob, cache("c-pull", ns, imagePullSecrets=[{"name": "cache-pull"}])
    )
    assert refusal(out) == secret_refused("bob", "cache-pull", ns, kind="AIMKVCache")


def test_without_its_params_the_policy_refuses_everything(tenancy: Tenancy) -> None:
    # parameterNotFoundAction: Deny. Last in the module: it deletes and restores the ConfigMap.
    cp, ns = tenancy.cp, tenancy.ns_a
    plain = service("no-params", ns)
    dry_run = ["create", "--dry-run=server", "-f", "-"]
    kubectl(cp, "-n", SYSTEM_NS, "delete", "configmap", PARAMS)
    try:
        wait_for(
            "the missing params to refuse a plain service",
            lambda: (
                (
                    "denied request: failed to configure binding: no params found for policy"
                    " binding with `Deny` parameterNotFoundAction"
                )
                in tenancy.as_user(tenancy.alice, *dry_run, input=json.dumps(plain)).stderr
            ),
            timeout=60,
        )
    finally:
        kubectl(
            cp,
            "apply",
            "--server-side",
            "-f",
            str(MANIFESTS / "tenancy" / "admission_policy_params.yaml"),
        )
    until_ok(
        "the restored params to admit it again",
        lambda: tenancy.as_user(tenancy.alice, *dry_run, input=json.dumps(plain)),
    )
