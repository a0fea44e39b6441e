"""aimctl.client.testing: a fake client and event recorder for fast reconciler unit tests
(controller-runtime's ``pkg/client/fake``, ``pkg/client/interceptor`` and ``FakeRecorder``).

::

    fake = FakeClient(objects=[cache], interceptors=Interceptors(apply=flaky_apply))
    recorder = FakeEventRecorder()
    await KVCacheReconciler(fake, recorder).reconcile(Request("ns", "cache"))
    assert fake.actions == []  # converged: zero writes

What the fake server keeps from the real one:

- Reads: ``get``/``list``/``by_index`` hand out frozen objects, like the informer cache
  (mutation raises ``TypeError``); ``get_live``/``list_live`` and every write return mutable
  copies. There is no cache lag: a write is visible to the next read.
- ``metadata.resourceVersion``: an opaque string, new on every write that changes the object
  (a no-op write keeps it, as the server does). A write carrying one is guarded by it:
  ``Conflict`` when it is stale. An update without one is unconditional.
- ``metadata.generation``: 1 on create; +1 when anything outside metadata changes (outside
  metadata and status, for kinds with a status subresource) and when deletion starts.
- ``uid`` and ``creationTimestamp`` are set on create; no write changes them, nor the
  generation, resourceVersion or deletionTimestamp.
- Status subresource (every kind but :data:`KINDS_WITHOUT_STATUS`): create drops the status,
  writes to the object keep the stored status, writes to ``status`` change only the status.
  Without one, status writes raise ``NotFound`` and status is an ordinary field.
- Deletion: an object without finalizers goes at once; one with finalizers gets a
  ``deletionTimestamp`` and goes when a write removes the last one. No finalizer may be added
  while deleting (``Invalid``).
- Errors are the real classes: ``NotFound``, ``AlreadyExists``, ``Conflict``, ``Invalid``,
  ``BadRequest``; a namespaced object without a namespace raises ``ValueError`` as the real
  client does.

Approximated or absent (test those on the real apiserver, ``tests/integration``): server-side
apply (a pragmatic merge, see ``_merge``) and strategic merge patch; defaulting, validation,
admission and CRD schemas; owner-reference garbage collection and propagation policies;
informer lag, watches and read-your-own-writes; the real client's retries (an injected error
reaches the caller at once); namespaces need not exist; no version conversion.
"""

from aimctl.client.testing._fake import FakeClient as FakeClient
from aimctl.client.testing._interceptors import Hook as Hook, Interceptors as Interceptors
from aimctl.client.testing._recorder import (
    FakeEventRecorder as FakeEventRecorder,
    RecordedEvent as RecordedEvent,
)
from aimctl.client.testing._server import (
    CLUSTER_SCOPED_KINDS as CLUSTER_SCOPED_KINDS,
    KINDS_WITHOUT_STATUS as KINDS_WITHOUT_STATUS,
    Action as Action,
)

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "KINDS_WITHOUT_STATUS",
    "Action",
    "FakeClient",
    "FakeEventRecorder",
    "Hook",
    "Interceptors",
    "RecordedEvent",
]
