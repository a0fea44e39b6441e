"""Pure helpers on Kubernetes object dicts: metadata, conditions, owner references, finalizers.

Nothing here performs I/O; callers write the results back through the client.
"""

from aimctl.objects._conditions import (
    ConditionStatus as ConditionStatus,
    find_condition as find_condition,
    is_condition_true as is_condition_true,
    now_rfc3339 as now_rfc3339,
    set_condition as set_condition,
)
from aimctl.objects._finalizers import (
    has_finalizer as has_finalizer,
    is_being_deleted as is_being_deleted,
    with_finalizer as with_finalizer,
    without_finalizer as without_finalizer,
)
from aimctl.objects._meta import (
    api_group as api_group,
    key_of as key_of,
    labels_of as labels_of,
    meta as meta,
    name_of as name_of,
    namespace_of as namespace_of,
    uid_of as uid_of,
)
from aimctl.objects._owners import (
    AlreadyOwnedError as AlreadyOwnedError,
    check_can_control as check_can_control,
    controller_of as controller_of,
    controller_reference as controller_reference,
    is_controlled_by as is_controlled_by,
    is_owned_by as is_owned_by,
    owner_matches as owner_matches,
    owner_reference as owner_reference,
    with_owner_reference as with_owner_reference,
)
from aimctl.objects._subset import diff_paths as diff_paths, is_subset as is_subset

__all__ = [
    "AlreadyOwnedError",
    "ConditionStatus",
    "api_group",
    "check_can_control",
    "controller_of",
    "controller_reference",
    "diff_paths",
    "find_condition",
    "has_finalizer",
    "is_being_deleted",
    "is_condition_true",
    "is_controlled_by",
    "is_owned_by",
    "is_subset",
    "key_of",
    "labels_of",
    "meta",
    "name_of",
    "namespace_of",
    "now_rfc3339",
    "owner_matches",
    "owner_reference",
    "set_condition",
    "uid_of",
    "with_finalizer",
    "with_owner_reference",
    "without_finalizer",
]
