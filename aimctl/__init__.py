"""aimctl: a level-triggered, controller-runtime-style Kubernetes reconciler library for asyncio.

The core a controller author needs is re-exported here::

    from aimctl import GVK, Manager, Request, Result, TerminalError, load_kubeconfig

    mgr = Manager(await load_kubeconfig())
    mgr.controller().for_(GVK("", "v1", "ConfigMap")).complete(reconcile)
    await mgr.run(handle_signals=True)

Everything else lives in the package named after its concept: ``aimctl.informers``,
``aimctl.workqueue``, ``aimctl.client``, ``aimctl.controller``, ``aimctl.manager``,
``aimctl.objects``, ``aimctl.metrics``, ``aimctl.envtest``. See docs/architecture.md.

The names above are imported on first use (PEP 562), so ``import aimctl.workqueue`` or
``aimctl --help`` does not pay for aiohttp and kubernetes-asyncio (about half a second).
"""

from __future__ import annotations

# The one place the version lives: pyproject.toml reads it ([tool.setuptools.dynamic], a plain
# literal so setuptools parses it without importing), and so do `aimctl --version` and the
# client's User-Agent. Assigned before any import, so a submodule importing it never meets a
# half-initialised package.
__version__ = "0.1.0"

import importlib
import typing

if typing.TYPE_CHECKING:
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

# Public name -> the package that defines it.
_LAZY = {
    "GVK": "aimctl.client",
    "ApiError": "aimctl.client",
    "Client": "aimctl.client",
    "NotFound": "aimctl.client",
    "Object": "aimctl.client",
    "load_incluster": "aimctl.client",
    "load_kubeconfig": "aimctl.client",
    "ControllerBuilder": "aimctl.controller",
    "Request": "aimctl.controller",
    "Result": "aimctl.controller",
    "TerminalError": "aimctl.controller",
    "LeaderElectionConfig": "aimctl.manager",
    "Manager": "aimctl.manager",
}


if not typing.TYPE_CHECKING:  # hidden from type checkers, which would then accept any name

    def __getattr__(name: str) -> typing.Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'aimctl' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
