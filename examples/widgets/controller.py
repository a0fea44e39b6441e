"""The Widget reconciler: ``status.ready`` says whether the named ConfigMap exists.

It reads and writes v2, the hub; clients using v1 see the same status through conversion.
"""

from __future__ import annotations

from aimctl.client import CONFIGMAP, Client
from aimctl.controller import Request, Result
from examples.widgets.api import V2

__all__ = ["FIELD_MANAGER", "WidgetReconciler"]

FIELD_MANAGER = "widget-controller"


class WidgetReconciler:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def reconcile(self, request: Request) -> Result | None:
        widget = await self.client.get(V2, request.name, request.namespace)
        if widget is None:
            return None
        name = widget["spec"]["configMapRef"]["name"]
        config_map = await self.client.get(CONFIGMAP, name, request.namespace)
        status = {
            "ready": config_map is not None,
            "observedGeneration": widget["metadata"].get("generation"),
        }
        if widget.get("status") != status:
            await self.client.apply_status(
                {
                    "apiVersion": V2.api_version,
                    "kind": V2.kind,
                    "metadata": {"name": request.name, "namespace": request.namespace},
                    "status": status,
                }
            )
        return None
