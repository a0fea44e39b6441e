"""A real node beside kwok's simulated ones: containerd, kubelet, kube-proxy, cluster DNS and a
local-path provisioner on this host, so the cache's Redis really runs.

Owns the node's processes and everything under ``<cluster dir>/node``; the host changes they
make are recorded and undone by :mod:`aimctl.envtest._host`. The images its pods run are built
without a registry by :mod:`aimctl.envtest._images`. Facts it relies on (and the pitfalls it
avoids) are from a spike on these machines, kept in docs/development.md ("The real node").

- **Choosing real pods.** The node carries the taint :data:`REAL_NODE_TAINT` and the label
  :data:`REAL_NODE_LABEL`: only a pod that tolerates the taint and selects the label runs here
  (:func:`real_pod_scheduling`); everything else stays on kwok's nodes, which scale tests need.
  kwok manages only nodes annotated ``kwok.x-k8s.io/node: fake``, so it never plays this node.
- **containerd** listens on a socket under the node directory (not ``/run/containerd``) with
  ``restrict_oom_score_adj``: root in these VMs lacks ``CAP_SYS_RESOURCE`` and runc cannot set a
  negative OOM score (the sandbox fails to start otherwise).
- **kubelet** runs with its own identity: a ``system:node:<name>`` client certificate (the
  apiserver authorizes it with the Node authorizer and NodeRestriction), a serving certificate
  from the cluster CA for its address, webhook authentication and authorization (anonymous
  off), and its cgroups under a root of its own so teardown finds every container. cgroup v1 is
  accepted explicitly (``failCgroupV1: false``: 1.36 refuses it otherwise). Images are never
  garbage-collected: nothing could pull them back.
- **Network**: a CNI bridge (:data:`BRIDGE`) on :data:`REAL_POD_CIDR` (kwok's pods use
  10.244.0.0/24), host-local IPAM with its state under the node directory, and kube-proxy in
  iptables mode for ClusterIPs. The bridge sends pod-to-pod traffic through iptables
  (``bridge-nf-call-iptables``) so a Service reply between two pods of this node is un-NATed.
- **DNS**: CoreDNS as a host process on the node address, port :data:`DNS_PORT`, behind the
  ``kube-dns`` Service (:data:`DNS_SERVICE_IP`, port 53) with a hand-made EndpointSlice; no
  upstream (the machine has no internet), so only cluster names resolve.
- **Storage**: rancher's local-path-provisioner, as a host process, makes each claim of class
  :data:`LOCAL_PATH_CLASS` (the default class of a cluster with a real node) a directory under
  ``<node dir>/volumes`` (mode 0777, made by a helper pod on the node) and a ``hostPath`` PV
  pinned to this node. It cannot expand a claim; kwok's resize stage records a grown request as
  the claim's capacity, which is what a directory without a quota has anyway.
- Pods reach the apiserver through the ``kubernetes`` Service (10.0.0.1, in its serving
  certificate), which points at the host address: with a real node the apiserver listens on
  every address, not only 127.0.0.1. The provisioner and CoreDNS are host processes with
  kubeconfigs all the same.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from aimctl.envtest._apiserver import CertFiles, advertise_address
from aimctl.envtest._binaries import NodeAssets
from aimctl.envtest._certs import CertificateAuthority, write_private
from aimctl.envtest._containerd import containerd_config
from aimctl.envtest._full import LOCAL_PATH_PROVISIONER
from aimctl.envtest._host import (
    HostRecord,
    claim_host,
    make_cgroup_root,
    read_sysctls,
    restore_host,
)
from aimctl.envtest._images import BUSYBOX_IMAGE, Image, build_images, import_images
from aimctl.envtest._kubeconfig import write_kubeconfig
from aimctl.envtest._node_config import (
    APISERVER_KUBELET_CLIENT,
    BRIDGE,
    CGROUP_ROOT_PREFIX,
    CNI_NETWORK,
    COREDNS_USER,
    DNS_PORT,
    KUBE_PROXY_USER,
    KUBELET_USER,
    LOCAL_PATH_ACCOUNT,
    LOCAL_PATH_NAMESPACE,
    LOCAL_PATH_USER,
    REAL_NODE_LABEL,
    REAL_NODE_NAME,
    REAL_POD_CIDR,
    cni_config,
    corefile,
    dns_objects,
    helper_pod,
    kube_proxy_config,
    kubelet_config,
    local_path_config,
    rbac_objects,
)
from aimctl.envtest._process import ManagedProcess
from aimctl.envtest._rest import ApiError, SyncClient

__all__ = ["RealNode", "apiserver_flags", "host_address", "wait_for_real_node_policy"]


def host_address() -> str:
    """This host's primary IPv4 address (the source address of its default route).

    Raises:
        RuntimeError: no non-loopback IPv4 address.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.255", 9))  # UDP: no packet is sent, only a route chosen
            address = str(s.getsockname()[0])
        except OSError:
            address = ""
    if address and not address.startswith("127."):
        return address
    found = advertise_address("")
    if found is None:  # pragma: no cover - advertise_address("") never returns None
        raise RuntimeError("no non-loopback IPv4 address for the real node")
    return found


def _kubelet_client(certs: CertFiles) -> tuple[Path, Path]:
    return (
        certs.directory / f"{APISERVER_KUBELET_CLIENT}.crt",
        certs.directory / f"{APISERVER_KUBELET_CLIENT}.key",
    )


def apiserver_flags(ca: CertificateAuthority, certs: CertFiles) -> dict[str, str]:
    """The apiserver flags a cluster with a real node needs (writes the apiserver's kubelet
    client certificate): the Node authorizer and NodeRestriction for the kubelet's identity,
    and a verified connection to the kubelet by its InternalIP (its name resolves to 127.0.0.1
    here, which the apiserver refuses to proxy to)."""
    cert, key = _kubelet_client(certs)
    pair = ca.issue_client(APISERVER_KUBELET_CLIENT, ["system:masters"])
    cert.write_bytes(pair.cert_pem)
    write_private(key, pair.key_pem)
    return {
        # All addresses, not only 127.0.0.1: the `kubernetes` Service sends pods to the host
        # address, and an operator pod on the real node must reach the server (clients still
        # authenticate: client certificates or tokens, RBAC).
        "bind-address": "0.0.0.0",
        "authorization-mode": "Node,RBAC",
        "enable-admission-plugins": "NodeRestriction",
        "kubelet-client-certificate": str(cert),
        "kubelet-client-key": str(key),
        "kubelet-certificate-authority": str(certs.ca),
        "kubelet-preferred-address-types": "InternalIP",
    }


class RealNode:
    """The real node of one full-mode cluster (see the module docstring).

    Guarantees: after :meth:`start`, node :data:`REAL_NODE_NAME` is Ready, ``kube-dns``
    answers, the ``local-path`` class is the default one, and the images of
    :func:`~aimctl.envtest._images.build_images` are in its containerd. After :meth:`stop` the
    host is as :mod:`aimctl.envtest._host` promises.

    Raises: :class:`~aimctl.envtest._process.ProcessStartError` from :meth:`start`;
    :class:`~aimctl.envtest._host.HostBusy` when another real node runs on this host.
    """

    def __init__(
        self,
        assets: NodeAssets,
        *,
        work_dir: Path,
        ca: CertificateAuthority,
        certs: CertFiles,
        server: str,
        redis_images: Sequence[str],
        image_cache: Path,
        detached: bool = False,
    ) -> None:
        self._assets = assets
        self.node_dir = work_dir / "node"
        self._ca = ca
        self._certs = certs
        self._server = server
        self._redis_images = tuple(redis_images)
        self._image_cache = image_cache
        self.address = ""
        logs = work_dir / "logs"

        def process(name: str) -> ManagedProcess:
            return ManagedProcess(name, [], log_path=logs / f"{name}.log", detached=detached)

        self.containerd = process("containerd")
        self.kubelet = process("kubelet")
        self.kube_proxy = process("kube-proxy")
        self.coredns = process("coredns")
        self.provisioner = process("local-path-provisioner")
        self.images: list[Image] = []

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.containerd, self.kubelet, self.kube_proxy, self.coredns, self.provisioner]

    @property
    def socket(self) -> Path:
        return self.node_dir / "containerd" / "containerd.sock"

    @property
    def cgroup_root(self) -> str:
        digest = hashlib.sha256(str(self.node_dir).encode()).hexdigest()[:8]
        return f"/{CGROUP_ROOT_PREFIX}{digest}"

    def record(self) -> HostRecord:
        return HostRecord(
            node_dir=str(self.node_dir),
            cgroup_root=self.cgroup_root,
            bridge=BRIDGE,
            cni_network=CNI_NETWORK,
            pod_cidr=REAL_POD_CIDR,
            containerd_socket=str(self.socket),
            kube_proxy=str(self._assets.path("kube-proxy")),
            sysctls=read_sysctls(),
        )

    # -- set-up ------------------------------------------------------------------------------

    def _kubeconfig(self, name: str, user: str, groups: Sequence[str] = ()) -> Path:
        pair = self._ca.issue_client(user, groups)
        return write_kubeconfig(
            self.node_dir / "pki" / f"{name}.kubeconfig",
            server=self._server,
            ca_pem=self._ca.cert_pem,
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
        )

    def _write(self, relative: str, content: str) -> Path:
        path = self.node_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def _configure(self) -> dict[str, list[str]]:
        """Write every file the components read; returns their argv."""
        node = self.node_dir
        pki = node / "pki"
        pki.mkdir(parents=True, exist_ok=True, mode=0o700)
        serving = self._ca.issue_serving([REAL_NODE_NAME, self.address])
        serving_files = (pki / "kubelet.crt", pki / "kubelet.key")
        serving_files[0].write_bytes(serving.cert_pem)
        write_private(serving_files[1], serving.key_pem)
        (node / "volumes").mkdir(parents=True, exist_ok=True)
        cni_dir = node / "cni" / "net.d"
        cni_dir.mkdir(parents=True, exist_ok=True)
        (cni_dir / "10-aimctl.conflist").write_text(json.dumps(cni_config(node / "cni"), indent=2))
        containerd = self._write(
            "containerd/config.toml",
            containerd_config(
                root=node / "containerd" / "root",
                state=node / "containerd" / "state",
                socket=self.socket,
                cni_conf_dir=cni_dir,
            ),
        )
        kubelet = self._write(
            "kubelet-config.yaml",
            yaml.safe_dump(
                kubelet_config(
                    address=self.address,
                    node_dir=node,
                    ca=self._certs.ca,
                    serving=serving_files,
                    cgroup_root=self.cgroup_root,
                )
            ),
        )
        proxy = self._write(
            "kube-proxy-config.yaml",
            yaml.safe_dump(kube_proxy_config(self._kubeconfig("kube-proxy", KUBE_PROXY_USER))),
        )
        dns = self._write(
            "Corefile", corefile(self.address, self._kubeconfig("coredns", COREDNS_USER))
        )
        lp_config = self._write(
            "local-path/config.json", json.dumps(local_path_config(node / "volumes"))
        )
        helper = self._write("local-path/helper-pod.yaml", yaml.safe_dump(helper_pod()))
        key, value = REAL_NODE_LABEL
        a = self._assets
        return {
            "containerd": ["containerd", f"--config={containerd}"],
            "kubelet": [
                str(a.path("kubelet")),
                f"--config={kubelet}",
                f"--kubeconfig={self._kubeconfig('kubelet', KUBELET_USER, ['system:nodes'])}",
                f"--root-dir={node / 'kubelet'}",
                f"--cert-dir={pki}",
                f"--hostname-override={REAL_NODE_NAME}",
                f"--node-ip={self.address}",
                f"--node-labels={key}={value}",
                "--v=1",
            ],
            "kube-proxy": [str(a.path("kube-proxy")), f"--config={proxy}"],
            "coredns": [str(a.path("coredns")), "-conf", str(dns)],
            "local-path-provisioner": [
                str(a.path("local-path-provisioner")),
                "start",
                f"--config={lp_config}",
                f"--provisioner-name={LOCAL_PATH_PROVISIONER}",
                f"--namespace={LOCAL_PATH_NAMESPACE}",
                f"--helper-image={BUSYBOX_IMAGE}",
                f"--helper-pod-file={helper}",
                f"--service-account-name={LOCAL_PATH_ACCOUNT}",
                f"--kubeconfig={self._kubeconfig('local-path', LOCAL_PATH_USER)}",
            ],
        }

    def _cluster_objects(self, client: SyncClient) -> None:
        for path, body in rbac_objects():
            client.create(path, body, exist_ok=True)
        for path, body in dns_objects(self.address):
            client.create(path, body, exist_ok=True)
        client.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOCAL_PATH_NAMESPACE}},
            exist_ok=True,
        )
        namespaced = f"/api/v1/namespaces/{LOCAL_PATH_NAMESPACE}"
        client.create(
            f"{namespaced}/serviceaccounts",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": LOCAL_PATH_ACCOUNT},
            },
            exist_ok=True,
        )
        # The helper pod mounts the scripts from this ConfigMap (the provisioner's default
        # name); the upstream manifest's scripts.
        client.create(
            f"{namespaced}/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "local-path-config"},
                "data": {
                    "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                    "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                },
            },
            exist_ok=True,
        )

    def start(self, client: SyncClient, *, timeout: float) -> None:
        """Start the node's processes; wait until the node is Ready and DNS answers."""
        self.address = host_address()
        self.node_dir.mkdir(parents=True, exist_ok=True)
        # Claimed first: a crashed holder's settings are restored before ours are read.
        claim_host(self.node_dir)
        self.record().write()
        for name, value in (
            ("net.ipv4.ip_forward", "1"),
            ("net.bridge.bridge-nf-call-iptables", "1"),
        ):
            path = Path("/proc/sys") / name.replace(".", "/")
            if path.exists():
                path.write_text(value + "\n")
        make_cgroup_root(self.cgroup_root)
        argv = self._configure()
        self.images = build_images(
            self._image_cache,
            pause_binary=self._assets.path("pause"),
            redis_references=self._redis_images,
        )
        self.containerd.argv = argv["containerd"]
        self.containerd.start()
        self.containerd.wait_ready(self.socket.exists, timeout=timeout)
        import_images("ctr", self.socket, self.images)
        self._cluster_objects(client)
        for process in (self.kubelet, self.kube_proxy, self.coredns, self.provisioner):
            process.argv = argv[process.name]
            process.start()
        self.kubelet.wait_ready(lambda: _node_ready(client), timeout=timeout)
        self.coredns.wait_ready(_dns_answers(self.address), timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the processes and undo the host changes (idempotent)."""
        for process in reversed(self.processes):
            process.stop(timeout)
        record = HostRecord.read(self.node_dir)
        if record is not None:
            restore_host(record)


def _node_ready(client: SyncClient) -> bool:
    try:
        node = client.request("GET", f"/api/v1/nodes/{REAL_NODE_NAME}")
    except ApiError:
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def _dns_answers(address: str) -> Callable[[], bool]:
    """A probe: CoreDNS answers a query for the ``kubernetes`` Service's A record."""
    query = (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        + b"".join(
            bytes([len(p)]) + p.encode()
            for p in ("kubernetes", "default", "svc", "cluster", "local")
        )
        + b"\x00\x00\x01\x00\x01"
    )

    def probe() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            s.sendto(query, (address, DNS_PORT))
            answer = s.recv(512)
        # Same id, a response, RCODE 0 (NOERROR), at least one answer.
        return (
            answer[:2] == query[:2]
            and answer[2] & 0x80 != 0
            and answer[3] & 0x0F == 0
            and (int.from_bytes(answer[6:8], "big") > 0)
        )

    return probe


def wait_for_real_node_policy(
    dry_run: Callable[[str], str], labels: Mapping[str, str], *, timeout: float = 60.0
) -> None:
    """Return once the real-node policy (:func:`real_node_policy`) puts a new pod carrying
    ``labels`` on the real node.

    The apiserver loads admission policies from an informer, a moment after they are created;
    a pod made before that lands on a kwok node, where its local-path claim is never
    provisioned. ``dry_run`` creates the pod given as JSON with ``--dry-run=server`` (through
    admission, storing nothing) and returns the answer as JSON.

    Raises:
        TimeoutError: the policy is not in effect after ``timeout`` seconds.
    """
    key, value = REAL_NODE_LABEL
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "real-node-policy-probe", "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "probe"}]},
    }
    deadline = time.monotonic() + timeout
    while True:
        answer = json.loads(dry_run(json.dumps(probe)))
        if (answer["spec"].get("nodeSelector") or {}).get(key) == value:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the real-node policy is not in effect after {timeout:.0f}s")
        time.sleep(0.2)
