"""A fake :class:`~aimctl.client.EventRecorder` that keeps Events in a list (controller-runtime's
``record.FakeRecorder``). Usable wherever an ``EventRecorder`` is expected; no event loop needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aimctl.client._recorder import EventRecorder, EventType

__all__ = ["FakeEventRecorder", "RecordedEvent"]


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One recorded Event: about ``kind`` ``namespace``/``name``, with its type, reason, note
    (truncated to 1024 characters, as the real recorder does) and action."""

    kind: str
    namespace: str
    name: str
    type: EventType
    reason: str
    note: str
    action: str


class FakeEventRecorder(EventRecorder):
    """Records every call to :meth:`event` in :attr:`events`, in order; repeats are kept (the
    real recorder folds them into a series on one Event)."""

    def __init__(self, reporting_controller: str = "fake-controller") -> None:
        # The real constructor needs a RestClient; nothing here talks to a server.
        self.reporting_controller = reporting_controller
        self.reporting_instance = reporting_controller
        self.events: list[RecordedEvent] = []

    def event(
        self,
        regarding: Mapping[str, Any],
        type_: EventType,
        reason: str,
        note: str,
        *,
        action: str = "Reconcile",
    ) -> None:
        m = regarding.get("metadata") or {}
        self.events.append(
            RecordedEvent(
                kind=str(regarding.get("kind", "")),
                namespace=str(m.get("namespace", "")),
                name=str(m.get("name", "")),
                type=type_,
                reason=reason,
                note=note[:1024],
                action=action,
            )
        )

    @property
    def reasons(self) -> list[str]:
        """The reasons of the recorded Events, in order."""
        return [e.reason for e in self.events]

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        return None
