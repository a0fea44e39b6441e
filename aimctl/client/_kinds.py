"""Well-known Kubernetes kinds as ``GVK`` constants: ``client.get(CONFIGMAP, name, ns)``.

The versions are the served, non-deprecated ones (Kubernetes 1.29+). Constants only; nothing
here asks discovery, so a kind missing from a cluster still fails at ``resource_for``.
"""

from __future__ import annotations

from typing import Final

from aimctl.client._types import GVK

__all__ = [
    "CLUSTERROLE",
    "CLUSTERROLEBINDING",
    "CONFIGMAP",
    "CRD",
    "CRONJOB",
    "CUSTOMRESOURCEDEFINITION",
    "DAEMONSET",
    "DEPLOYMENT",
    "ENDPOINTSLICE",
    "EVENT",
    "HORIZONTALPODAUTOSCALER",
    "INGRESS",
    "JOB",
    "LEASE",
    "LIMITRANGE",
    "NAMESPACE",
    "NETWORKPOLICY",
    "NODE",
    "PERSISTENTVOLUME",
    "PERSISTENTVOLUMECLAIM",
    "POD",
    "PODDISRUPTIONBUDGET",
    "PV",
    "PVC",
    "REPLICASET",
    "RESOURCEQUOTA",
    "ROLE",
    "ROLEBINDING",
    "SECRET",
    "SERVICE",
    "SERVICEACCOUNT",
    "STATEFULSET",
    "STORAGECLASS",
]

# core/v1
POD: Final = GVK("", "v1", "Pod")
SERVICE: Final = GVK("", "v1", "Service")
CONFIGMAP: Final = GVK("", "v1", "ConfigMap")
SECRET: Final = GVK("", "v1", "Secret")
NAMESPACE: Final = GVK("", "v1", "Namespace")
NODE: Final = GVK("", "v1", "Node")
SERVICEACCOUNT: Final = GVK("", "v1", "ServiceAccount")
PERSISTENTVOLUMECLAIM: Final = GVK("", "v1", "PersistentVolumeClaim")
PVC: Final = PERSISTENTVOLUMECLAIM
PERSISTENTVOLUME: Final = GVK("", "v1", "PersistentVolume")
PV: Final = PERSISTENTVOLUME
RESOURCEQUOTA: Final = GVK("", "v1", "ResourceQuota")
LIMITRANGE: Final = GVK("", "v1", "LimitRange")

# events.k8s.io/v1: what EventRecorder writes (core/v1 Events are the same objects).
EVENT: Final = GVK("events.k8s.io", "v1", "Event")

# apps/v1, batch/v1, autoscaling/v2, policy/v1
DEPLOYMENT: Final = GVK("apps", "v1", "Deployment")
STATEFULSET: Final = GVK("apps", "v1", "StatefulSet")
DAEMONSET: Final = GVK("apps", "v1", "DaemonSet")
REPLICASET: Final = GVK("apps", "v1", "ReplicaSet")
JOB: Final = GVK("batch", "v1", "Job")
CRONJOB: Final = GVK("batch", "v1", "CronJob")
HORIZONTALPODAUTOSCALER: Final = GVK("autoscaling", "v2", "HorizontalPodAutoscaler")
PODDISRUPTIONBUDGET: Final = GVK("policy", "v1", "PodDisruptionBudget")

# networking, storage, coordination, discovery
NETWORKPOLICY: Final = GVK("networking.k8s.io", "v1", "NetworkPolicy")
INGRESS: Final = GVK("networking.k8s.io", "v1", "Ingress")
ENDPOINTSLICE: Final = GVK("discovery.k8s.io", "v1", "EndpointSlice")
STORAGECLASS: Final = GVK("storage.k8s.io", "v1", "StorageClass")
LEASE: Final = GVK("coordination.k8s.io", "v1", "Lease")

# rbac.authorization.k8s.io/v1
ROLE: Final = GVK("rbac.authorization.k8s.io", "v1", "Role")
ROLEBINDING: Final = GVK("rbac.authorization.k8s.io", "v1", "RoleBinding")
CLUSTERROLE: Final = GVK("rbac.authorization.k8s.io", "v1", "ClusterRole")
CLUSTERROLEBINDING: Final = GVK("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding")

# apiextensions.k8s.io/v1
CUSTOMRESOURCEDEFINITION: Final = GVK("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
CRD: Final = CUSTOMRESOURCEDEFINITION
