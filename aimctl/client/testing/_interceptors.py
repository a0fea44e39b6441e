"""Interceptors: per-method hooks that replace a fake client's call (controller-runtime's
``pkg/client/interceptor.Funcs``), for injecting errors and observing calls.

A hook receives the fake client *without* interceptors, then the method's own arguments, in
the method's own form (positional and keyword alike), and either raises or delegates::

    async def flaky_apply(client: FakeClient, obj: Mapping[str, Any], *, force: bool = False):
        if obj["kind"] == "Service":
            raise TransportError("connection reset")  # as if the retries were exhausted
        return await client.apply(obj, force=force)

    fake = FakeClient(objects=[...], interceptors=Interceptors(apply=flaky_apply))

The composite methods (``mutate``, ``create_or_update``, ``create_or_patch``,
``add_finalizer``, ``remove_finalizer``) are built on the intercepted primitives, so a hook on
``update`` or ``patch`` reaches them too. A hook that raises without delegating sends nothing
to the fake server: no object changes and nothing is added to ``fake.actions``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Hook", "Interceptors"]

Hook = Callable[..., Awaitable[Any]]
"""``async def hook(client, *args, **kwargs)``: the intercepted method's arguments."""


@dataclass(frozen=True, slots=True)
class Interceptors:
    """One optional hook per primitive method of the client; None calls the fake itself."""

    get: Hook | None = None
    list: Hook | None = None
    by_index: Hook | None = None
    get_live: Hook | None = None
    list_live: Hook | None = None
    create: Hook | None = None
    apply: Hook | None = None
    apply_status: Hook | None = None
    patch: Hook | None = None
    update: Hook | None = None
    delete: Hook | None = None
