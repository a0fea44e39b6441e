"""What a reflector tells its consumer: the list/watch event contract.

Owns the event types only. The reflector produces them; the informer consumes them (and is the
only consumer that should apply them to a store). Each type states what the consumer may assume.

A run of the reflector looks like::

    Init, InitApply*, InitDone, (Apply | Delete)*,  [Failed, (Apply | Delete)*]*,
    Init, InitApply*, InitDone, ...                  (a relist: after 410 Gone or on a fresh start)

with ``Failed`` possible anywhere; a ``Failed`` between ``Init`` and ``InitDone`` abandons that
list (the next one starts with a new ``Init``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aimctl.client import Object

__all__ = [
    "Apply",
    "Delete",
    "Failed",
    "Init",
    "InitApply",
    "InitDone",
    "ReflectorEvent",
]


@dataclass(frozen=True, slots=True)
class Init:
    """A full (re)list begins. Discard any buffer from an unfinished earlier list.

    ``relist`` is False only for the first list of a reflector's life.
    """

    relist: bool


@dataclass(frozen=True, slots=True)
class InitApply:
    """One object of the list in progress. Buffer it; do not treat it as a change yet."""

    object: Object


@dataclass(frozen=True, slots=True)
class InitDone:
    """The list is complete as of ``resource_version``.

    The buffered ``InitApply`` objects are now the whole truth: anything the consumer held that
    is not among them was deleted while nobody was watching (deliver it as a tombstone).
    Replace the consumer's state in one step.
    """

    resource_version: str


@dataclass(frozen=True, slots=True)
class Apply:
    """An object was created or changed (watch ADDED or MODIFIED). Newer than anything before."""

    object: Object


@dataclass(frozen=True, slots=True)
class Delete:
    """An object was deleted; ``object`` is its final state as the server last had it."""

    object: Object


@dataclass(frozen=True, slots=True)
class Failed:
    """A list or watch attempt failed; the reflector retries by itself after ``retry_in`` s.

    ``error`` is the cause: an ``ApiError`` (with the server's status and message), a
    ``TransportError``/``WatchStalled``, or ``NoKindMatch``. ``phase`` says what failed.
    Consumers record it (``wait_for_sync`` reports it) and do nothing else: state already
    applied stays valid, and the reflector resumes from its last resourceVersion.
    """

    error: BaseException
    retry_in: float
    phase: Literal["list", "watch"]


ReflectorEvent = Init | InitApply | InitDone | Apply | Delete | Failed
