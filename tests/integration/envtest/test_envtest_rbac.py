"""Acceptance: a user made with add_user is refused (403) until a Role grants access."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api
from kubernetes_asyncio.client.rest import ApiException

from aimctl.envtest import ControlPlane

ROLE: Any = {
    "metadata": {"name": "read-configmaps"},
    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
}
BINDING: Any = {
    "metadata": {"name": "devs-read-configmaps"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
    "subjects": [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}],
}


async def _status(call: Any) -> int:
    try:
        await call
    except ApiException as e:
        return int(e.status)
    return 200


async def test_user_needs_a_role(
    control_plane: ControlPlane, namespace: str, api: ApiClient
) -> None:
    user = control_plane.add_user("alice", ["devs"])
    assert user.kubeconfig.is_file()
    assert user.groups == ("devs",)
    async with await config.new_client_from_config(
        config_file=str(user.kubeconfig), persist_config=False
    ) as alice:
        with pytest.raises(ApiException) as refused:
            await CoreV1Api(alice).list_namespaced_config_map(namespace)
        assert refused.value.status == 403
        assert 'User "alice"' in json.loads(refused.value.body or b"{}")["message"]

        rbac = RbacAuthorizationV1Api(api)
        await rbac.create_namespaced_role(namespace, ROLE)
        await rbac.create_namespaced_role_binding(namespace, BINDING)
        statuses = []
        for _ in range(100):  # the RBAC authorizer's informer catches up within moments
            statuses.append(await _status(CoreV1Api(alice).list_namespaced_config_map(namespace)))
            if statuses[-1] != 403:
                break
            await asyncio.sleep(0.1)
        assert statuses[-1] == 200
        assert await _status(CoreV1Api(alice).list_namespaced_secret(namespace)) == 403
