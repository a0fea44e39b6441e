"""aimctl.informers: an in-memory, always-converging, read-only copy of the cluster's objects.

Reconcilers read from memory and the API server sees one list and one watch per kind and scope.
Start with ``InformerFactory(rest, mapper)``, ``factory.informer(gvk)``, ``add_handler`` and
``informer.store``; narrow or reshape a kind's cache with ``ByObject`` (namespaces, label and
field selectors, transform, resync period, metadata only). The pieces are usable on their own:
``Reflector`` (list/watch state machine, no cache), ``Store`` (indexed, one writer),
``SharedInformer`` (fan-out, resync, sync state).
"""

from aimctl.informers._events import (
    Apply as Apply,
    Delete as Delete,
    Failed as Failed,
    Init as Init,
    InitApply as InitApply,
    InitDone as InitDone,
    ReflectorEvent as ReflectorEvent,
)
from aimctl.informers._factory import InformerFactory as InformerFactory
from aimctl.informers._frozen import (
    FrozenDict as FrozenDict,
    FrozenList as FrozenList,
    freeze as freeze,
    thaw as thaw,
)
from aimctl.informers._handlers import (
    DeletedFinalStateUnknown as DeletedFinalStateUnknown,
    EventHandler as EventHandler,
    FuncHandler as FuncHandler,
)
from aimctl.informers._indexers import (
    CONTROLLER_UID_INDEX as CONTROLLER_UID_INDEX,
    NAMESPACE_INDEX as NAMESPACE_INDEX,
    OWNER_UID_INDEX as OWNER_UID_INDEX,
    IndexFunc as IndexFunc,
    field_indexer as field_indexer,
    index_by_controller_uid as index_by_controller_uid,
    index_by_namespace as index_by_namespace,
    index_by_owner_uid as index_by_owner_uid,
    label_indexer as label_indexer,
)
from aimctl.informers._informer import (
    HandlerRegistration as HandlerRegistration,
    InformerSyncError as InformerSyncError,
    SharedInformer as SharedInformer,
)
from aimctl.informers._listwatch import RestListerWatcher as RestListerWatcher
from aimctl.informers._metrics import (
    InformerMetrics as InformerMetrics,
    InformerMetricSet as InformerMetricSet,
)
from aimctl.informers._options import ByObject as ByObject
from aimctl.informers._reflector import (
    INITIAL_EVENTS_END as INITIAL_EVENTS_END,
    EventStream as EventStream,
    ListerWatcher as ListerWatcher,
    Reflector as Reflector,
    ReflectorOptions as ReflectorOptions,
)
from aimctl.informers._selectors import (
    FieldRequirement as FieldRequirement,
    FieldSelector as FieldSelector,
    FieldSelectorLike as FieldSelectorLike,
    LabelSelector as LabelSelector,
    Requirement as Requirement,
    SelectorLike as SelectorLike,
    to_field_selector as to_field_selector,
    to_selector as to_selector,
)
from aimctl.informers._store import (
    IndexFuncError as IndexFuncError,
    Store as Store,
    StoreWriter as StoreWriter,
    object_key as object_key,
    split_key as split_key,
)
from aimctl.informers._transforms import (
    LAST_APPLIED_ANNOTATION as LAST_APPLIED_ANNOTATION,
    Transform as Transform,
    compose as compose,
    strip_last_applied as strip_last_applied,
    strip_managed_fields as strip_managed_fields,
)

__all__ = [
    "CONTROLLER_UID_INDEX",
    "INITIAL_EVENTS_END",
    "LAST_APPLIED_ANNOTATION",
    "NAMESPACE_INDEX",
    "OWNER_UID_INDEX",
    "Apply",
    "ByObject",
    "Delete",
    "DeletedFinalStateUnknown",
    "EventHandler",
    "EventStream",
    "Failed",
    "FieldRequirement",
    "FieldSelector",
    "FieldSelectorLike",
    "FrozenDict",
    "FrozenList",
    "FuncHandler",
    "HandlerRegistration",
    "IndexFunc",
    "IndexFuncError",
    "InformerFactory",
    "InformerMetricSet",
    "InformerMetrics",
    "InformerSyncError",
    "Init",
    "InitApply",
    "InitDone",
    "LabelSelector",
    "ListerWatcher",
    "Reflector",
    "ReflectorEvent",
    "ReflectorOptions",
    "Requirement",
    "RestListerWatcher",
    "SelectorLike",
    "SharedInformer",
    "Store",
    "StoreWriter",
    "Transform",
    "compose",
    "field_indexer",
    "freeze",
    "index_by_controller_uid",
    "index_by_namespace",
    "index_by_owner_uid",
    "label_indexer",
    "object_key",
    "split_key",
    "strip_last_applied",
    "strip_managed_fields",
    "thaw",
    "to_field_selector",
    "to_selector",
]
