"""Typed defaulting and validating admission handlers.

The contracts are controller-runtime's ``CustomDefaulter`` and ``CustomValidator``
(kubernetes-sigs/controller-runtime: pkg/webhook/admission/defaulter_custom.go,
validator_custom.go), on plain JSON objects and with the request passed explicitly (Go passes
it in the context):

- A :class:`Defaulter` changes the object it is given in place; the handler answers with the
  JSON patch from the received object to the changed one (none when nothing changed). DELETE is
  allowed without calling it.
- A :class:`Validator` returns warnings, or raises :class:`Denied` (or an
  ``aimctl.client.ApiError``: its code, reason and message become the response's status) to
  refuse. CONNECT is allowed without calling it. UPDATE passes the old object, DELETE passes the
  old object as the one to validate.
- Anything else a user function raises is a bug: the request is answered ``Errored(500)``
  (controller-runtime recovers a panic the same way) and logged with its traceback, and
  ``controller_runtime_webhook_panics_total`` counts it.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from aimctl.client import ApiError, Object
from aimctl.webhook._jsonpatch import create_patch
from aimctl.webhook._review import AdmissionRequest, AdmissionResponse, allowed, denied, errored

__all__ = [
    "AdmissionHandler",
    "Defaulter",
    "DefaulterFunc",
    "DefaultingHandler",
    "Denied",
    "Validator",
    "ValidatingHandler",
    "Warnings",
]

log = structlog.get_logger("aimctl.webhook")

Warnings = Sequence[str]


class Denied(Exception):
    """Refuse the request; ``message`` reaches the user (kubectl prints it), and so do
    ``warnings`` (controller-runtime sends a validator's warnings with its denial too)."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 403,
        reason: str = "Forbidden",
        warnings: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.warnings = tuple(warnings)


class Defaulter(Protocol):
    """Fills defaults into ``obj`` in place (a private deep copy of the request's object)."""

    async def default(self, request: AdmissionRequest, obj: Object) -> None: ...


DefaulterFunc = Callable[[AdmissionRequest, Object], Awaitable[None]]


class Validator(Protocol):
    """Validates an object; returns warnings, raises :class:`Denied` to refuse."""

    async def validate_create(self, request: AdmissionRequest, obj: Object) -> Warnings: ...

    async def validate_update(
        self, request: AdmissionRequest, old: Object, new: Object
    ) -> Warnings: ...

    async def validate_delete(self, request: AdmissionRequest, obj: Object) -> Warnings: ...


class AdmissionHandler(Protocol):
    """Answers one decoded admission request."""

    async def handle(self, request: AdmissionRequest) -> AdmissionResponse: ...


def _refusal(err: BaseException) -> AdmissionResponse | None:
    if isinstance(err, Denied):
        return denied(err.message, code=err.code, reason=err.reason).with_warnings(err.warnings)
    if isinstance(err, ApiError):
        return AdmissionResponse(False, err.status, err.reason, err.message)
    return None


class _Panics(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Guarded:
    """Turns a user function's exception into the response controller-runtime gives."""

    def __init__(self, name: str, panics: _Panics | None) -> None:
        self.name = name
        self.panics = panics

    def failed(self, request: AdmissionRequest, err: Exception) -> AdmissionResponse:
        refusal = _refusal(err)
        if refusal is not None:
            return refusal
        log.error(
            "Admission handler raised",
            webhook=self.name,
            uid=request.uid,
            kind=request.kind.kind,
            name=request.name,
            namespace=request.namespace,
            exc_info=err,
        )
        if self.panics is not None:
            self.panics.inc()
        return errored(500, "internal error occurred during admission")


class DefaultingHandler(_Guarded):
    """A mutating webhook around a :class:`Defaulter` (or an async function)."""

    def __init__(
        self, defaulter: Defaulter | DefaulterFunc, *, name: str = "", panics: _Panics | None = None
    ) -> None:
        super().__init__(name, panics)
        method = getattr(defaulter, "default", None)
        self._default: DefaulterFunc = method if callable(method) else defaulter  # type: ignore[assignment]

    async def handle(self, request: AdmissionRequest) -> AdmissionResponse:
        if request.operation == "DELETE":
            return allowed()
        if not isinstance(request.object, dict):
            return errored(400, "the request has no object")
        obj = copy.deepcopy(request.object)
        try:
            await self._default(request, obj)
        except Exception as err:
            return self.failed(request, err)
        patch = create_patch(request.object, obj)
        if not patch:
            return allowed()
        return AdmissionResponse(True, 200, patch=patch)


class ValidatingHandler(_Guarded):
    """A validating webhook around a :class:`Validator`."""

    def __init__(
        self, validator: Validator, *, name: str = "", panics: _Panics | None = None
    ) -> None:
        super().__init__(name, panics)
        self._validator = validator

    async def handle(self, request: AdmissionRequest) -> AdmissionResponse:
        v = self._validator
        new, old = request.object, request.old_object
        try:
            if request.operation == "CONNECT":
                return allowed()
            if request.operation == "CREATE":
                if not isinstance(new, dict):
                    return errored(400, "the request has no object")
                warnings = await v.validate_create(request, copy.deepcopy(new))
            elif request.operation == "UPDATE":
                if not isinstance(new, dict) or not isinstance(old, dict):
                    return errored(400, "an UPDATE request needs object and oldObject")
                warnings = await v.validate_update(request, copy.deepcopy(old), copy.deepcopy(new))
            else:  # DELETE: the object being deleted is the old one
                if not isinstance(old, dict):
                    return errored(400, "a DELETE request needs oldObject")
                warnings = await v.validate_delete(request, copy.deepcopy(old))
        except Exception as err:
            return self.failed(request, err)
        return allowed().with_warnings(list(warnings or ()))
