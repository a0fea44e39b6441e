"""What the real node's components read: rendered configuration and the cluster objects they
need, as plain data (unit-tested without a host).

The choices behind each value are in :mod:`aimctl.envtest._node`'s docstring; this module only
spells them out, so a reader finds every flag of the kubelet, kube-proxy, CoreDNS, the CNI
network and the local-path provisioner in one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aimctl.envtest._full import LOCAL_PATH_PROVISIONER
from aimctl.envtest._images import BUSYBOX_IMAGE

__all__ = [
    "BRIDGE",
    "CNI_NETWORK",
    "DNS_PORT",
    "DNS_SERVICE_IP",
    "LOCAL_PATH_CLASS",
    "REAL_NODE_LABEL",
    "REAL_NODE_NAME",
    "REAL_NODE_TAINT",
    "REAL_POD_CIDR",
    "cni_config",
    "corefile",
    "dns_objects",
    "kube_proxy_config",
    "kubelet_config",
    "local_path_class",
    "rbac_objects",
    "real_node_policy",
    "real_pod_scheduling",
]

REAL_NODE_NAME = "aimctl-node-0"
REAL_NODE_LABEL = ("aimctl.dev/node", "real")
REAL_NODE_TAINT = {"key": "aimctl.dev/real-node", "value": "true", "effect": "NoSchedule"}
REAL_POD_CIDR = "10.244.1.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
DNS_SERVICE_IP = "10.0.0.10"
DNS_PORT = 1053
BRIDGE = "aimctl0"
CNI_NETWORK = "aimctl-real-node"
LOCAL_PATH_CLASS = "local-path"
LOCAL_PATH_NAMESPACE = "local-path-storage"
LOCAL_PATH_ACCOUNT = "local-path-provisioner"
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
CGROUP_ROOT_PREFIX = "aimctl-"
# The users the node's components authenticate as (client certificates from the cluster CA).
KUBELET_USER = f"system:node:{REAL_NODE_NAME}"
KUBE_PROXY_USER = "system:kube-proxy"  # bound to system:node-proxier by default
COREDNS_USER = "aimctl:coredns"
LOCAL_PATH_USER = "aimctl:local-path-provisioner"
APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client"


def real_pod_scheduling() -> dict[str, Any]:
    """The pod-spec fields that put a pod on the real node (merge into ``spec``)."""
    key, value = REAL_NODE_LABEL
    toleration = {**REAL_NODE_TAINT, "operator": "Equal"}
    return {"nodeSelector": {key: value}, "tolerations": [toleration]}


def real_node_policy(name: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """A MutatingAdmissionPolicy and its binding that put every new pod carrying ``labels`` on
    the real node (adds :func:`real_pod_scheduling`'s selector and toleration).

    This is how a cluster, not the workload, decides which pods are real: ``aimctl dev`` sends
    the KV caches' Redis pods there, so the guide's YAML runs as written.
    """
    key, value = REAL_NODE_LABEL
    toleration = {**REAL_NODE_TAINT, "operator": "Equal"}
    selector_key = key.replace("~", "~0").replace("/", "~1")
    patch = (
        "(has(object.spec.nodeSelector)"
        f' ? [JSONPatch{{op: "add", path: "/spec/nodeSelector/{selector_key}", value: "{value}"}}]'
        f' : [JSONPatch{{op: "add", path: "/spec/nodeSelector", value: {{"{key}": "{value}"}}}}])'
        " + (has(object.spec.tolerations)"
        f' ? [JSONPatch{{op: "add", path: "/spec/tolerations/-", value: {_cel_map(toleration)}}}]'
        f' : [JSONPatch{{op: "add", path: "/spec/tolerations", value: [{_cel_map(toleration)}]}}])'
    )
    matches = " && ".join(
        f"{json.dumps(k)} in object.metadata.labels"
        f" && object.metadata.labels[{json.dumps(k)}] == {json.dumps(v)}"
        for k, v in labels.items()
    )
    group = "admissionregistration.k8s.io/v1"
    return [
        {
            "apiVersion": group,
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ]
                },
                "matchConditions": [
                    {"name": "labelled", "expression": f"has(object.metadata.labels) && {matches}"}
                ],
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": patch}}],
            },
        },
        {
            "apiVersion": group,
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name},
        },
    ]


def _cel_map(value: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()) + "}"


# -- rendered configuration --------------------------------------------------------------------


def cni_config(state_dir: Path) -> dict[str, Any]:
    """One conflist: a bridge with host-local IPAM on :data:`REAL_POD_CIDR`, and portmap."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # No masquerading: pods reach nothing beyond this host (no internet here), and
                # a masquerade rule per pod would be one more thing to clean up.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(state_dir / "ipam"),
                    "ranges": [[{"subnet": REAL_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(
    *, address: str, node_dir: Path, ca: Path, serving: tuple[Path, Path], cgroup_root: str
) -> dict[str, Any]:
    """The KubeletConfiguration (see the module docstring for the choices)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": address,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving[0]),
        "tlsPrivateKeyFile": str(serving[1]),
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failSwapOn": False,
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{node_dir / 'containerd' / 'containerd.sock'}",
        "podLogsDir": str(node_dir / "pod-logs"),
        "clusterDomain": "cluster.local",
        "clusterDNS": [DNS_SERVICE_IP],
        "podCIDR": REAL_POD_CIDR,
        "maxPods": 110,
        "registerWithTaints": [REAL_NODE_TAINT],
        # Imported images cannot be pulled back: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "protectKernelDefaults": False,
        "enableServer": True,
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    """iptables mode; conntrack limits left as the host has them (0 means "do not set")."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": REAL_NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": CLUSTER_CIDR,
        "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def corefile(address: str, kubeconfig: Path) -> str:
    """Cluster names only (no upstream: these machines have no internet)."""
    return (
        f".:{DNS_PORT} {{\n"
        f"    bind {address}\n"
        "    errors\n"
        "    health 127.0.0.1:18080\n"
        "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n"
        f"        kubeconfig {kubeconfig}\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "    }\n"
        "    cache 30\n"
        "}\n"
    )


def dns_objects(address: str) -> list[tuple[str, dict[str, Any]]]:
    """The ``kube-dns`` Service and its hand-made EndpointSlice (CoreDNS is a host process)."""
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "clusterIP": DNS_SERVICE_IP,
            "ports": [
                {"name": n, "protocol": p, "port": 53, "targetPort": DNS_PORT} for n, p in ports
            ],
        },
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-host",
            "namespace": "kube-system",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "aimctl-envtest",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": n, "protocol": p, "port": DNS_PORT} for n, p in ports],
    }
    return [
        ("/api/v1/namespaces/kube-system/services", service),
        ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", endpoints),
    ]


def rbac_objects() -> list[tuple[str, dict[str, Any]]]:
    """What CoreDNS and the provisioner may do (the rules of their upstream manifests)."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"

    def role(name: str, rules: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        return [
            (
                f"{rbac}/clusterroles",
                {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules},
            ),
            (
                f"{rbac}/clusterrolebindings",
                {
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": name},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": name,
                    },
                    "subjects": [
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}
                    ],
                },
            ),
        ]

    def rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
        return {"apiGroups": [group], "resources": resources, "verbs": verbs}

    read = ["get", "list", "watch"]
    return [
        # coredns/deployment kubernetes/coredns.yaml.sed
        *role(
            COREDNS_USER,
            [
                rule("", ["endpoints", "services", "pods", "namespaces"], ["list", "watch"]),
                rule("discovery.k8s.io", ["endpointslices"], ["list", "watch"]),
            ],
        ),
        # rancher/local-path-provisioner deploy/local-path-storage.yaml
        *role(
            LOCAL_PATH_USER,
            [
                rule("", ["nodes", "persistentvolumeclaims", "configmaps"], read),
                rule("", ["pods"], [*read, "create", "patch", "update", "delete"]),
                rule("", ["pods/log"], ["get"]),
                rule("", ["persistentvolumes"], [*read, "create", "patch", "update", "delete"]),
                rule("", ["events"], ["create", "patch"]),
                rule("storage.k8s.io", ["storageclasses"], read),
            ],
        ),
    ]


def local_path_class(name: str = LOCAL_PATH_CLASS, *, default: bool = True) -> dict[str, Any]:
    """A StorageClass of the node's local-path provisioner (WaitForFirstConsumer: the claim's
    directory is made on the node its pod was scheduled to)."""
    metadata: dict[str, Any] = {"name": name}
    if default:
        metadata["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": metadata,
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def helper_pod() -> dict[str, Any]:
    # The provisioner adds the command, the volume, nodeName and a toleration of every taint.
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "containers": [
                {"name": "helper-pod", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent"}
            ]
        },
    }


def local_path_config(volumes: Path) -> dict[str, Any]:
    # Only this node: a claim scheduled to a kwok node fails with the provisioner's clear
    # "config doesn't contain node" event instead of waiting on a helper pod kwok never ends.
    return {
        "nodePathMap": [{"node": REAL_NODE_NAME, "paths": [str(volumes)]}],
        "setupCommand": "",
        "teardownCommand": "",
    }
