"""aimctl: a level-triggered, controller-runtime-style Kubernetes reconciler library for asyncio.

The core a controller author needs is re-exported here::

    from aimctl import GVK, Manager, Request, Result, TerminalError, load_kubeconfig

    mgr = Manager(await load_kubeconfig())
    mgr.controller().for_(GVK("", "v1", "ConfigMap")).complete(reconcile)
    await mgr.run(handle_signals=True)

Everything else lives in the package named after its concept: ``aimctl.informers``,
``aimctl.workqueue``, ``aimctl.client``, ``aimctl.controller``, ``aimctl.manager``,
``aimctl.objects``, ``aimctl.metrics``, ``aimctl.envtest``. See docs/architecture.md.
"""

from aimctl.client import (
    GVK as GVK,
    ApiError as ApiError,
    Client as Client,
    NotFound as NotFound,
    Object as Object,
    load_incluster as load_incluster,
    load_kubeconfig as load_kubeconfig,
)
from aimctl.controller import (
    ControllerBuilder as ControllerBuilder,
    Request as Request,
    Result as Result,
    TerminalError as TerminalError,
)
from aimctl.manager import LeaderElectionConfig as LeaderElectionConfig, Manager as Manager

__version__ = "0.1.0"
__all__ = [
    "GVK",
    "ApiError",
    "Client",
    "ControllerBuilder",
    "LeaderElectionConfig",
    "Manager",
    "NotFound",
    "Object",
    "Request",
    "Result",
    "TerminalError",
    "__version__",
    "load_incluster",
    "load_kubeconfig",
]
