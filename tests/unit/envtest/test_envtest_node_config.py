"""The real node's rendered configuration: the values the spike found necessary, pinned."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from aimctl.envtest import real_pod_scheduling
from aimctl.envtest._full import POD_CIDR as KWOK_POD_CIDR
from aimctl.envtest._node_config import (
    CLUSTER_CIDR,
    DNS_PORT,
    DNS_SERVICE_IP,
    REAL_NODE_TAINT,
    REAL_POD_CIDR,
    cni_config,
    corefile,
    dns_objects,
    kube_proxy_config,
    kubelet_config,
    local_path_class,
    local_path_config,
    real_node_policy,
)


def _kubelet() -> dict[str, object]:
    return kubelet_config(
        address="192.0.2.2",
        node_dir=Path("/n"),
        ca=Path("/ca.crt"),
        serving=(Path("/k.crt"), Path("/k.key")),
        cgroup_root="/aimctl-x",
    )


def test_kubelet_accepts_cgroup_v1_and_keeps_imported_images() -> None:
    config = _kubelet()
    assert config["failCgroupV1"] is False  # 1.36 refuses cgroup v1 otherwise
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["imageGCHighThresholdPercent"] == 100  # nothing could pull them back
    assert config["containerRuntimeEndpoint"] == "unix:///n/containerd/containerd.sock"
    assert config["podLogsDir"] == "/n/pod-logs"  # not /var/log/pods
    assert config["clusterDNS"] == [DNS_SERVICE_IP]
    assert config["registerWithTaints"] == [REAL_NODE_TAINT]


def test_kubelet_authenticates_and_authorizes_every_request() -> None:
    config = _kubelet()
    assert config["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": "/ca.crt"},
    }
    assert config["authorization"] == {"mode": "Webhook"}
    assert config["readOnlyPort"] == 0
    assert config["address"] == "192.0.2.2"  # not 0.0.0.0: kwok's node is 127.0.0.1


def test_pod_ranges_do_not_overlap_and_kube_proxy_covers_both() -> None:
    real, kwok = ipaddress.IPv4Network(REAL_POD_CIDR), ipaddress.IPv4Network(KWOK_POD_CIDR)
    cluster = ipaddress.IPv4Network(CLUSTER_CIDR)
    assert not real.overlaps(kwok)
    assert real.subnet_of(cluster) and kwok.subnet_of(cluster)
    assert kube_proxy_config(Path("/kc"))["clusterCIDR"] == CLUSTER_CIDR


def test_kube_proxy_leaves_the_hosts_conntrack_settings_alone() -> None:
    assert kube_proxy_config(Path("/kc"))["conntrack"] == {
        "maxPerCore": 0,
        "min": 0,
        "tcpEstablishedTimeout": "0s",
        "tcpCloseWaitTimeout": "0s",
    }


def test_cni_keeps_its_state_in_the_node_directory_and_adds_no_masquerade() -> None:
    (bridge, portmap) = cni_config(Path("/n/cni"))["plugins"]
    assert bridge["ipam"]["dataDir"] == "/n/cni/ipam"
    assert bridge["ipam"]["ranges"] == [[{"subnet": REAL_POD_CIDR}]]
    assert bridge["ipMasq"] is False
    assert portmap["type"] == "portmap"


def test_dns_service_points_at_the_host_process() -> None:
    (_, service), (_, slice_) = dns_objects("192.0.2.2")
    assert service["spec"]["clusterIP"] == DNS_SERVICE_IP
    assert {p["port"] for p in service["spec"]["ports"]} == {53}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {DNS_PORT}
    assert slice_["endpoints"] == [{"addresses": ["192.0.2.2"], "conditions": {"ready": True}}]
    assert "bind 192.0.2.2" in corefile("192.0.2.2", Path("/kc"))
    assert "forward" not in corefile("192.0.2.2", Path("/kc"))  # no upstream here


def test_local_path_serves_only_the_real_node() -> None:
    config = local_path_config(Path("/n/volumes"))
    assert config["nodePathMap"] == [{"node": "aimctl-node-0", "paths": ["/n/volumes"]}]
    sc = local_path_class()
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert "annotations" not in local_path_class("fast-ssd", default=False)["metadata"]


def test_scheduling_and_policy_agree_with_the_taint() -> None:
    scheduling = real_pod_scheduling()
    assert scheduling["nodeSelector"] == {"aimctl.dev/node": "real"}
    (toleration,) = scheduling["tolerations"]
    assert {k: toleration[k] for k in ("key", "value", "effect")} == REAL_NODE_TAINT
    policy, binding = real_node_policy("p", {"a": "b"})
    assert binding["spec"] == {"policyName": "p"}
    expression = policy["spec"]["mutations"][0]["jsonPatch"]["expression"]
    assert "/spec/nodeSelector/aimctl.dev~1node" in expression
