"""Every public package lists exactly its public names in ``__all__``, and each resolves."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "aimctl",
    "aimctl.workqueue",
    "aimctl.informers",
    "aimctl.client",
    "aimctl.client.testing",
    "aimctl.controller",
    "aimctl.manager",
    "aimctl.objects",
    "aimctl.metrics",
    "aimctl.envtest",
    "aimctl.api.v1alpha1",
    "aimctl.reconcilers",
    "aimctl.webhook",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_the_public_names_and_each_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", name).startswith("aimctl")
        and not isinstance(v, type(importlib))
    }
    assert public <= exported | {"annotations"}, (
        f"{name}: public but not in __all__: {public - exported}"
    )
    for n in exported:
        assert hasattr(module, n), f"{name}.__all__ names {n}, which does not exist"
    assert len(module.__all__) == len(exported), f"{name}.__all__ has duplicates"
