"""Sources from outside the cluster: a channel of events fed by user code.

controller-runtime's ``source.Channel``: something that is not a Kubernetes watch (a webhook
receiver, a poller of an external system, another controller) tells the controller "look at
this object again". It puts objects (mapped to keys like informer events, by a mapper that
defaults to the object's own key) or ready :class:`Request` s into an ``asyncio.Queue``; the
controller consumes it from :meth:`Controller.start` (items put earlier wait in the channel)
until :meth:`Controller.stop`.

No predicates, including ``with_event_filter`` ones: the producer decides what to send
(controller-runtime's ``WatchesRawSource`` ignores ``WithEventFilter`` too). Items go in at
priority 0. A mapper that raises is handled like an informer mapper's (logged, counted,
retried: see ``_handlers``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypeAlias

from aimctl.controller._controller import SourceFunc
from aimctl.controller._handlers import EnqueueHandler
from aimctl.controller._reconcile import Request
from aimctl.workqueue import Queue

__all__ = ["Channel", "channel_source"]

Channel: TypeAlias = asyncio.Queue[Mapping[str, Any] | Request]
"""What ``ControllerBuilder.watches_channel`` consumes: objects or requests."""


def channel_source(channel: Channel, queue: Queue[Request], handler: EnqueueHandler) -> SourceFunc:
    """A source that moves ``channel``'s items into ``queue``: requests as they are, objects
    through ``handler`` (its mapper). Each item is ``task_done`` once handled, so a producer
    may ``await channel.join()``."""

    async def run() -> None:
        while True:
            item = await channel.get()
            try:
                if isinstance(item, Request):
                    queue.add(item, priority=0)
                else:
                    handler.on_generic(item)
            finally:
                channel.task_done()

    return run
