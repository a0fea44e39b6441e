"""Controllers: the reconcile contract, the worker loop, the builder, handlers and predicates.

Start with :class:`ControllerBuilder` (usually via ``manager.controller()``) and the contract in
:class:`Request`, :class:`Result` and :class:`TerminalError`.
"""

from aimctl.controller._builder import (
    BuilderError as BuilderError,
    ControllerBuilder as ControllerBuilder,
    ControllerHost as ControllerHost,
)
from aimctl.controller._controller import Controller as Controller, SourceFunc as SourceFunc
from aimctl.controller._handlers import (
    EnqueueHandler as EnqueueHandler,
    Mapper as Mapper,
    for_controller_owner as for_controller_owner,
    for_object as for_object,
    for_owners as for_owners,
)
from aimctl.controller._owner_scope import ScopeResolver as ScopeResolver
from aimctl.controller._predicates import (
    Predicate as Predicate,
    PredicateFuncs as PredicateFuncs,
    and_ as and_,
    annotation_changed as annotation_changed,
    generation_changed as generation_changed,
    label_changed as label_changed,
    label_selector as label_selector,
    not_ as not_,
    or_ as or_,
    resource_version_changed as resource_version_changed,
)
from aimctl.controller._reconcile import (
    ReconcileFunc as ReconcileFunc,
    Reconciler as Reconciler,
    Request as Request,
    Result as Result,
    TerminalError as TerminalError,
)
from aimctl.controller._sources import Channel as Channel

__all__ = [
    "BuilderError",
    "Channel",
    "Controller",
    "ControllerBuilder",
    "ControllerHost",
    "EnqueueHandler",
    "Mapper",
    "Predicate",
    "PredicateFuncs",
    "ReconcileFunc",
    "Reconciler",
    "Request",
    "Result",
    "ScopeResolver",
    "SourceFunc",
    "TerminalError",
    "and_",
    "annotation_changed",
    "for_controller_owner",
    "for_object",
    "for_owners",
    "generation_changed",
    "label_changed",
    "label_selector",
    "not_",
    "or_",
    "resource_version_changed",
]
