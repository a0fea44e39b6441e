"""Full mode: kube-controller-manager, kube-scheduler and kwok on top of etcd + kube-apiserver.

Owns the three extra processes and the cluster objects they need: one kwok node, kwok's stages
and a default StorageClass.

- kwok runs standalone (no kwokctl) with a ``--config`` file holding its Stage objects. Giving any
  stages replaces kwok's defaults, so the node stages (initialize, heartbeat with lease), the pod
  "fast" stages and the volume "fast" stages are all passed together. They are read from the
  ``kwok-stages/`` copy of the kwok module's ``kustomize/stage`` next to the binaries.
- PVCs bind through kwok's volume stages, for **every StorageClass whose provisioner is**
  ``kwok.x-k8s.io/volume`` (the default ``kwok-volume``, and any made by
  :func:`kwok_storage_class`): the ``pvc-provision`` stage creates a hostPath PV per claim and
  marks the claim Bound, so any number of claims binds with no pre-created volumes. kwok's own
  stages select ``self.spec.storageClassName == 'kwok-volume'``; :func:`volume_stages` replaces
  that with the annotations the provisioning protocol already puts there: the controller-manager's
  PV controller sets ``volume.kubernetes.io/storage-provisioner: <class provisioner>`` on a
  pending claim of a class with an external provisioner (for WaitForFirstConsumer classes, once
  the scheduler picked a node), and ``pvc-provision`` sets ``pv.kubernetes.io/provisioned-by``
  on each PV it creates. A ``pvc-resize`` stage plays the external resizer: a bound claim whose
  request grew gets the new size as its capacity; the API server only admits the growth when the
  class has ``allowVolumeExpansion: true``.
- Pods start and turn Ready through kwok's pod stages, except two failures kwok plays instead
  (:func:`pod_stages`), picked by the container's image so a test breaks and fixes a workload
  through its spec alone: an image containing :data:`PULL_FAILURE_MARKER` cannot be pulled
  (``ErrImagePull``, then ``ImagePullBackOff``, never Ready); an image containing
  :data:`OOM_MARKER` in a container whose memory limit is one of :data:`OOM_LIMITS` is
  ``OOMKilled`` (exit 137), then ``CrashLoopBackOff``. A new pod with another image, or a
  larger limit, starts normally.
- The controller-manager signs ServiceAccount tokens with the same key the apiserver verifies, so
  full mode keeps the ServiceAccount admission plugin on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from aimctl.envtest._apiserver import CertFiles
from aimctl.envtest._binaries import Assets
from aimctl.envtest._ports import LOOPBACK, free_ports
from aimctl.envtest._process import ManagedProcess
from aimctl.envtest._rest import ApiError, SyncClient

__all__ = [
    "KWOK_PROVISIONER",
    "NODE_NAME",
    "OOM_MARKER",
    "OOM_LIMITS",
    "PULL_FAILURE_MARKER",
    "STAGE_SETS",
    "STORAGE_CLASS",
    "FullComponents",
    "kwok_storage_class",
    "load_kustomization",
    "node_manifest",
    "node_ready",
    "pod_failure_stages",
    "pod_stages",
    "resize_stage",
    "volume_stages",
]

NODE_NAME = "kwok-node-0"
STORAGE_CLASS = "kwok-volume"
KWOK_PROVISIONER = "kwok.x-k8s.io/volume"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"  # the real node's (aimctl.envtest._node)
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# What the volume stages select on instead of kwok's class name (see the module docstring).
KWOK_CLASS_EXPRESSION = f"self.spec.storageClassName == '{STORAGE_CLASS}'"
PROVISIONED_BY = {
    "PersistentVolumeClaim": {"volume.kubernetes.io/storage-provisioner": KWOK_PROVISIONER},
    "PersistentVolume": {"pv.kubernetes.io/provisioned-by": KWOK_PROVISIONER},
}
POD_CIDR = "10.244.0.0/24"
NODE_IP = "127.0.0.1"
# Relative to the kwok-stages directory; see the module docstring for why all four.
STAGE_SETS = ("node/fast", "node/heartbeat-with-lease", "pod/fast", "volume/fast")
VOLUME_STAGES = "volume/fast"
POD_STAGES = "pod/fast"
# Images kwok fails instead of running (see the module docstring and :func:`pod_stages`).
PULL_FAILURE_MARKER = "does-not-exist"
OOM_MARKER = "oom-killed"
# The memory limits under which an OOM_MARKER image is killed: kwok's CEL can test quantities
# for equality but not order them (its Quantity's `<` does not type-check), so "below 2Gi" is
# spelled out as the limits tests use. An unset limit is never OOM-killed (no cgroup bound).
OOM_LIMITS = ("64Mi", "128Mi", "256Mi", "512Mi", "1Gi", "1536Mi")
ALWAYS_ALLOW = "/healthz,/readyz,/livez,/metrics"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def load_kustomization(directory: Path) -> Iterator[dict[str, Any]]:
    """The documents a plain kustomization names under ``resources:`` (files and directories)."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            yield from load_kustomization(path)
        else:
            yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def kwok_storage_class(
    name: str, *, default: bool = False, expandable: bool = False
) -> dict[str, Any]:
    """A StorageClass whose claims full mode's kwok binds: provisioner ``kwok.x-k8s.io/volume``,
    Immediate binding, reclaim policy Delete. ``expandable`` sets ``allowVolumeExpansion``;
    ``default`` adds the default-class annotation."""
    metadata: dict[str, Any] = {"name": name}
    if default:
        metadata["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": metadata,
        "provisioner": KWOK_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": expandable,
    }


def _by_provisioner(stage: dict[str, Any]) -> dict[str, Any]:
    """A kwok volume stage selecting by provisioner annotation instead of by class name."""
    annotations = PROVISIONED_BY[stage["spec"]["resourceRef"]["kind"]]
    selector = stage["spec"]["selector"]
    expressions = selector.get("matchExpressions", [])
    kept = [
        e
        for e in expressions
        if (e.get("cel") or {}).get("expression", "").strip() != KWOK_CLASS_EXPRESSION
    ]
    if len(kept) == len(expressions):
        raise ValueError(
            f"kwok stage {stage['metadata']['name']} no longer selects on "
            f"`{KWOK_CLASS_EXPRESSION}`; check aimctl.envtest._full against the new kwok"
        )
    selector["matchExpressions"] = kept
    selector["matchAnnotations"] = {**(selector.get("matchAnnotations") or {}), **annotations}
    return stage


def resize_stage(provisioner: str = KWOK_PROVISIONER) -> dict[str, Any]:
    """What an external resizer reports once a bound claim of ``provisioner`` asks for more: the
    requested size as the claim's capacity.

    Also run for the real node's local-path claims (a directory without a quota: its capacity
    is bookkeeping, as kwok's hostPath volumes' is).

    The PV keeps its original ``spec.capacity``: kwok's ``apply`` step creates before it
    patches, and a partial PersistentVolume fails validation on create.
    """
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pvc-resize" + ("" if provisioner == KWOK_PROVISIONER else "-local")},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "PersistentVolumeClaim"},
            "selector": {
                "matchAnnotations": {"volume.kubernetes.io/storage-provisioner": provisioner},
                # An expression that fails (to compile, or on a missing key) stops kwok matching
                # *any* stage for the object: every lookup is guarded. The API server stores
                # quantities canonically ("1024Mi" reads back as "1Gi"), so strings compare.
                "matchExpressions": [
                    {"cel": {"expression": "!has(self.metadata.deletionTimestamp)"}},
                    {"cel": {"expression": "self.status.phase == 'Bound'"}},
                    {
                        "cel": {
                            "expression": "has(self.spec.volumeName) && "
                            "has(self.status.capacity) && has(self.status.capacity.storage) && "
                            "self.status.capacity.storage != self.spec.resources.requests.storage"
                        }
                    },
                ],
            },
            "steps": [
                {
                    "patch": {
                        "root": "status",
                        "subresource": "status",
                        "template": "capacity:\n"
                        "  storage: {{ .spec.resources.requests.storage | Quote }}\n",
                    }
                }
            ],
        },
    }


def volume_stages(directory: Path) -> list[dict[str, Any]]:
    """kwok's volume stages under ``directory`` selecting every kwok-provisioned claim and
    volume (not just class ``kwok-volume``), plus :func:`resize_stage`.

    Raises:
        ValueError: a PVC or PV stage no longer has kwok's class-name expression (a new kwok
            changed its stages; the retargeting must be checked).
    """
    stages = [
        _by_provisioner(d) if d["spec"]["resourceRef"]["kind"] in PROVISIONED_BY else d
        for d in load_kustomization(directory)
        if d.get("kind") == "Stage"
    ]
    return [*stages, resize_stage(), resize_stage(LOCAL_PATH_PROVISIONER)]


# The image and memory checks are CEL over kwok's typed Pod (its pod controller evaluates stage
# selectors on a *corev1.Pod; sigs.k8s.io/kwok pkg/utils/cel: json field names, ``Quantity()``
# with ``==``, a missing resource reads as 0); the rest are jq-style keys, as kwok's own pod
# stages use. An expression that errors stops kwok matching any stage for the pod (its log
# says "Failed to preprocess"), so tests of these stages check the pods actually move.
_PULLS_BAD_IMAGE = f"self.spec.containers.exists(c, c.image.contains('{PULL_FAILURE_MARKER}'))"
_OOM_KILLED = (
    f"self.spec.containers.exists(c, c.image.contains('{OOM_MARKER}') && ("
    + " || ".join(f"c.resources.limits['memory'] == Quantity('{q}')" for q in OOM_LIMITS)
    + "))"
)
_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_WAITING = ".status.containerStatuses.[].state.waiting.reason"
_TERMINATED = ".status.containerStatuses.[].state.terminated.reason"


def _cel(expression: str) -> dict[str, Any]:
    return {"cel": {"expression": expression}}


def _phase(phase: str) -> dict[str, Any]:
    return {"key": ".status.phase", "operator": "In", "values": [phase]}


def _failing_status(marker: str, phase: str, state: str, last: str = "") -> str:
    """A statusTemplate: containers whose image contains ``marker`` in ``state`` (YAML under
    ``state:``, indented 6), the others running; the pod not Ready."""
    return (
        "{{ $now := Now }}\n"
        "conditions:\n"
        "- lastTransitionTime: {{ $now | Quote }}\n"
        '  status: "True"\n'
        "  type: Initialized\n"
        "- lastTransitionTime: {{ $now | Quote }}\n"
        "  reason: ContainersNotReady\n"
        '  status: "False"\n'
        "  type: Ready\n"
        "- lastTransitionTime: {{ $now | Quote }}\n"
        "  reason: ContainersNotReady\n"
        '  status: "False"\n'
        "  type: ContainersReady\n"
        "containerStatuses:\n"
        "{{ range .spec.containers }}\n"
        "- image: {{ .image | Quote }}\n"
        "  name: {{ .name | Quote }}\n"
        f'  {{{{ if contains "{marker}" .image }}}}\n'
        "  ready: false\n"
        "  started: false\n"
        f"  restartCount: {1 if last else 0}\n"
        "  state:\n"
        f"{state}" + (f"  lastState:\n{last}" if last else "") + "  {{ else }}\n"
        "  ready: true\n"
        "  started: true\n"
        "  restartCount: 0\n"
        "  state:\n"
        "    running:\n"
        "      startedAt: {{ $now | Quote }}\n"
        "  {{ end }}\n"
        "{{ end }}\n"
        "hostIP: {{ NodeIPWith .spec.nodeName | Quote }}\n"
        "podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) "
        '( or .metadata.uid "" ) ( or .metadata.name "" ) '
        '( or .metadata.namespace "" ) | Quote }}\n'
        f"phase: {phase}\n"
        "startTime: {{ $now | Quote }}\n"
    )


def _pod_stage(
    name: str, expressions: list[dict[str, Any]], status: str, delay_ms: int
) -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": expressions},
            "delay": {"durationMilliseconds": delay_ms},
            "next": {"statusTemplate": status},
        },
    }


def pod_failure_stages() -> list[dict[str, Any]]:
    """What a kubelet reports for an image it cannot pull and for a container the kernel kills
    for memory, as kwok stages (see the module docstring for what selects them).

    - ``pod-image-pull-error``: a Pending pod with an image containing
      :data:`PULL_FAILURE_MARKER` gets ``waiting: ErrImagePull``, and 1 s later
      (``pod-image-pull-backoff``) ``ImagePullBackOff``, where it stays (the kubelet alternates
      between the two while it backs off; the pod never runs).
    - ``pod-oom-killed``: a Pending pod with an image containing :data:`OOM_MARKER` and a memory
      limit in :data:`OOM_LIMITS` is Running with that container ``terminated: OOMKilled``
      (exit 137), and 1 s later (``pod-oom-crash-loop``) ``waiting: CrashLoopBackOff`` with the
      OOM kill as its ``lastState`` and one restart, where it stays.
    """
    pull_waiting = (
        "    waiting:\n"
        "      reason: {reason}\n"
        '      message: {{{{ printf "{message}" .image | Quote }}}}\n'
    )
    err_pull = pull_waiting.format(
        reason="ErrImagePull",
        message='failed to pull and unpack image \\"%s\\": not found',
    )
    backoff = pull_waiting.format(
        reason="ImagePullBackOff", message='Back-off pulling image \\"%s\\"'
    )
    oom = (
        "    terminated:\n"
        "      exitCode: 137\n"
        "      reason: OOMKilled\n"
        "      startedAt: {{ $now | Quote }}\n"
        "      finishedAt: {{ $now | Quote }}\n"
    )
    crash_loop = (
        "    waiting:\n"
        "      reason: CrashLoopBackOff\n"
        '      message: {{ printf "back-off 10s restarting failed container=%s" .name | Quote }}\n'
    )
    return [
        _pod_stage(
            "pod-image-pull-error",
            [
                _NOT_DELETED,
                _phase("Pending"),
                _cel(_PULLS_BAD_IMAGE),
                {
                    "key": _WAITING,
                    "operator": "NotIn",
                    "values": ["ErrImagePull", "ImagePullBackOff"],
                },
            ],
            _failing_status(PULL_FAILURE_MARKER, "Pending", err_pull),
            delay_ms=200,
        ),
        _pod_stage(
            "pod-image-pull-backoff",
            [
                _NOT_DELETED,
                _cel(_PULLS_BAD_IMAGE),
                {"key": _WAITING, "operator": "In", "values": ["ErrImagePull"]},
            ],
            _failing_status(PULL_FAILURE_MARKER, "Pending", backoff),
            delay_ms=1000,
        ),
        _pod_stage(
            "pod-oom-killed",
            [_NOT_DELETED, _phase("Pending"), _cel(_OOM_KILLED)],
            _failing_status(OOM_MARKER, "Running", oom),
            delay_ms=200,
        ),
        _pod_stage(
            "pod-oom-crash-loop",
            [
                _NOT_DELETED,
                _phase("Running"),
                _cel(_OOM_KILLED),
                {"key": _TERMINATED, "operator": "In", "values": ["OOMKilled"]},
            ],
            _failing_status(OOM_MARKER, "Running", crash_loop, last=oom),
            delay_ms=1000,
        ),
    ]


def pod_stages(directory: Path) -> list[dict[str, Any]]:
    """kwok's pod stages under ``directory``, with ``pod-ready`` kept off the pods that
    :func:`pod_failure_stages` fail, plus those stages.

    Raises:
        ValueError: kwok's stages have no ``pod-ready`` (a new kwok renamed them).
    """
    stages = [d for d in load_kustomization(directory) if d.get("kind") == "Stage"]
    ready = [s for s in stages if s["metadata"]["name"] == "pod-ready"]
    if not ready:
        raise ValueError(
            "kwok's pod stages have no pod-ready; check aimctl.envtest._full against the new kwok"
        )
    for stage in ready:
        stage["spec"]["selector"].setdefault("matchExpressions", []).append(
            _cel(f"!({_PULLS_BAD_IMAGE}) && !({_OOM_KILLED})")
        )
    return [*stages, *pod_failure_stages()]


def node_manifest(name: str = NODE_NAME) -> dict[str, Any]:
    """A kwok-managed node without taints (kwokctl's ``node.yaml``, one pod CIDR)."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
        "status": {
            "addresses": [{"address": NODE_IP, "type": "InternalIP"}],
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def _healthz(port: int) -> Callable[[], bool]:
    # The components serve self-signed certificates from their --cert-dir: skip verification.
    client = SyncClient(LOOPBACK, port)
    return lambda: client.ok("/healthz")


def node_ready(client: SyncClient, name: str) -> bool:
    node = client.request("GET", f"/api/v1/nodes/{name}")
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def _default_service_account(client: SyncClient) -> bool:
    try:
        client.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
    except ApiError as e:
        if e.status == 404:
            return False
        raise
    return True


class FullComponents:
    """The controller-manager, scheduler and kwok of one full-mode control plane.

    Guarantees: after :meth:`start`, node ``kwok-node-0`` is Ready, the default StorageClass
    ``kwok-volume`` exists, kwok binds (and resizes) the claims of every class with provisioner
    ``kwok.x-k8s.io/volume``, and the ``default`` ServiceAccount exists in ``default``. All
    servers bind to 127.0.0.1 (kwok runs without its own server).

    Raises: :class:`~aimctl.envtest._process.ProcessStartError` from :meth:`start`.
    """

    def __init__(
        self,
        assets: Assets,
        *,
        work_dir: Path,
        certs: CertFiles,
        kubeconfig: Path,
        detached: bool = False,
    ) -> None:
        self._assets = assets
        self._work_dir = work_dir
        self._certs = certs
        self._kubeconfig = kubeconfig
        logs = work_dir / "logs"
        self.controller_manager = ManagedProcess(
            "kube-controller-manager",
            [],
            log_path=logs / "kube-controller-manager.log",
            detached=detached,
        )
        self.scheduler = ManagedProcess(
            "kube-scheduler", [], log_path=logs / "kube-scheduler.log", detached=detached
        )
        self.kwok = ManagedProcess("kwok", [], log_path=logs / "kwok.log", detached=detached)

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.controller_manager, self.scheduler, self.kwok]

    def _stages(self) -> list[dict[str, Any]]:
        stages: list[dict[str, Any]] = []
        for stage_set in STAGE_SETS:
            directory = self._assets.kwok_stages / stage_set
            if stage_set == VOLUME_STAGES:
                stages.extend(volume_stages(directory))
            elif stage_set == POD_STAGES:
                stages.extend(pod_stages(directory))
            else:
                stages.extend(d for d in load_kustomization(directory) if d.get("kind") == "Stage")
        return stages

    def _argv(self, kcm_port: int, scheduler_port: int, stages: Path) -> dict[str, list[str]]:
        kc = str(self._kubeconfig)
        common = [
            f"--kubeconfig={kc}",
            # No --authentication/--authorization-kubeconfig: the health and metrics paths are
            # always allowed, and without them nothing polls the requestheader CA (log noise).
            f"--authorization-always-allow-paths={ALWAYS_ALLOW}",
            f"--bind-address={LOOPBACK}",
            "--leader-elect=false",
            "--kube-api-qps=1000",
            "--kube-api-burst=2000",
        ]
        return {
            "kube-controller-manager": [
                str(self._assets.path("kube-controller-manager")),
                *common,
                f"--secure-port={kcm_port}",
                f"--cert-dir={self._work_dir / 'kube-controller-manager'}",
                f"--root-ca-file={self._certs.ca}",
                f"--service-account-private-key-file={self._certs.sa_private}",
            ],
            "kube-scheduler": [
                str(self._assets.path("kube-scheduler")),
                *common,
                f"--secure-port={scheduler_port}",
                f"--cert-dir={self._work_dir / 'kube-scheduler'}",
            ],
            "kwok": [
                str(self._assets.path("kwok")),
                f"--kubeconfig={kc}",
                f"--config={stages}",
                # Only kwok's own nodes: a real node beside them (aimctl.envtest._node) runs a
                # kubelet, and kwok playing it too would overwrite its status.
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                f"--node-ip={NODE_IP}",
                f"--cidr={POD_CIDR}",
                "--node-lease-duration-seconds=40",
            ],
        }

    def start(self, client: SyncClient, *, timeout: float) -> None:
        """Start the three processes and create the node and StorageClass; wait until usable."""
        stages = self._work_dir / "kwok-stages.yaml"
        stages.write_text(yaml.safe_dump_all(self._stages()))
        kcm_port, scheduler_port = free_ports(2)
        argv = self._argv(kcm_port, scheduler_port, stages)
        for process in self.processes:
            process.argv = argv[process.name]
            process.start()
        self.controller_manager.wait_ready(_healthz(kcm_port), timeout=timeout)
        self.scheduler.wait_ready(_healthz(scheduler_port), timeout=timeout)
        client.create(
            "/apis/storage.k8s.io/v1/storageclasses",
            kwok_storage_class(STORAGE_CLASS, default=True),
            exist_ok=True,
        )
        client.create("/api/v1/nodes", node_manifest(), exist_ok=True)
        self.kwok.wait_ready(lambda: node_ready(client, NODE_NAME), timeout=timeout)
        self.controller_manager.wait_ready(
            lambda: _default_service_account(client), timeout=timeout
        )

    def stop(self, timeout: float = 10.0) -> None:
        for process in reversed(self.processes):
            process.stop(timeout)
