"""The AdmissionReview v1 contract: requests in, responses out (``admission.k8s.io/v1``).

Field names and meanings are the API's (k8s.io/api: admission/v1/types.go), as
controller-runtime decodes and answers them (kubernetes-sigs/controller-runtime:
pkg/webhook/admission/http.go, response.go):

- A request carries ``uid`` (echoed in the response), the ``kind``/``resource`` being admitted
  (and ``requestKind``/``requestResource`` when the apiserver converted a request made at
  another version), ``operation`` (CREATE, UPDATE, DELETE, CONNECT), ``object`` (absent on
  DELETE), ``oldObject`` (UPDATE and DELETE), ``dryRun`` (a webhook with side effects must not
  make them then), ``userInfo`` and ``options``.
- A response carries ``allowed``, a ``status`` (code, reason, message; the message is what
  kubectl shows on a denial), ``warnings``, and for mutations ``patchType: JSONPatch`` with a
  base64 ``patch``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from aimctl.client import GVK, Object

__all__ = [
    "ADMISSION_API_VERSION",
    "AdmissionRequest",
    "AdmissionResponse",
    "Operation",
    "UserInfo",
    "allowed",
    "denied",
    "errored",
    "parse_admission_review",
    "render_admission_review",
]

ADMISSION_API_VERSION = "admission.k8s.io/v1"

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclass(frozen=True, slots=True)
class UserInfo:
    """Who made the request (authentication/v1 ``UserInfo``)."""

    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """One admission request, decoded. ``object`` and ``old_object`` are plain JSON."""

    uid: str
    kind: GVK
    resource: tuple[str, str, str]  # group, version, resource (plural)
    operation: Operation
    name: str = ""
    namespace: str = ""
    sub_resource: str = ""
    request_kind: GVK | None = None
    object: Object | None = None
    old_object: Object | None = None
    dry_run: bool = False
    user_info: UserInfo = field(default_factory=UserInfo)
    options: Object | None = None


@dataclass(frozen=True, slots=True)
class AdmissionResponse:
    """One admission answer. ``code``/``reason``/``message`` form the response's Status."""

    allowed: bool
    code: int = 200
    reason: str = ""
    message: str = ""
    warnings: tuple[str, ...] = ()
    patch: list[dict[str, Any]] | None = None  # RFC 6902 operations; None or [] = no patch

    def with_warnings(self, warnings: tuple[str, ...] | list[str]) -> AdmissionResponse:
        return AdmissionResponse(
            self.allowed,
            self.code,
            self.reason,
            self.message,
            (*self.warnings, *warnings),
            self.patch,
        )


def allowed(message: str = "") -> AdmissionResponse:
    """controller-runtime's ``Allowed``: code 200, no reason."""
    return AdmissionResponse(True, 200, "", message)


def denied(message: str, *, code: int = 403, reason: str = "Forbidden") -> AdmissionResponse:
    """controller-runtime's ``Denied``: code 403, reason Forbidden, the message for the user."""
    return AdmissionResponse(False, code, reason, message)


def errored(code: int, message: str) -> AdmissionResponse:
    """controller-runtime's ``Errored``: not allowed, the code, no reason."""
    return AdmissionResponse(False, code, "", message)


def _gvk(d: Any) -> GVK:
    return GVK(str(d.get("group", "")), str(d.get("version", "")), str(d.get("kind", "")))


def parse_admission_review(review: Any) -> AdmissionRequest:
    """The request of an ``AdmissionReview`` v1 document.

    Raises:
        ValueError: not an ``admission.k8s.io/v1`` AdmissionReview with a request.
    """
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise ValueError("expected an AdmissionReview")
    if review.get("apiVersion") != ADMISSION_API_VERSION:
        raise ValueError(f"unsupported AdmissionReview version {review.get('apiVersion')!r}")
    req = review.get("request")
    if not isinstance(req, dict) or not req.get("uid"):
        raise ValueError("the AdmissionReview has no request")
    op = req.get("operation")
    if op not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise ValueError(f"unknown operation {op!r}")
    res = req.get("resource") or {}
    user = req.get("userInfo") or {}
    return AdmissionRequest(
        uid=str(req["uid"]),
        kind=_gvk(req.get("kind") or {}),
        resource=(
            str(res.get("group", "")),
            str(res.get("version", "")),
            str(res.get("resource", "")),
        ),
        operation=op,
        name=str(req.get("name", "")),
        namespace=str(req.get("namespace", "")),
        sub_resource=str(req.get("subResource", "")),
        request_kind=_gvk(req["requestKind"]) if req.get("requestKind") else None,
        object=req.get("object"),
        old_object=req.get("oldObject"),
        dry_run=bool(req.get("dryRun", False)),
        user_info=UserInfo(
            username=str(user.get("username", "")),
            uid=str(user.get("uid", "")),
            groups=tuple(user.get("groups") or ()),
            extra=dict(user.get("extra") or {}),
        ),
        options=req.get("options"),
    )


def render_admission_review(uid: str, response: AdmissionResponse) -> Object:
    """The ``AdmissionReview`` v1 answering request ``uid``."""
    status: Object = {"code": response.code}
    if response.reason:
        status["reason"] = response.reason
    if response.message:
        status["message"] = response.message
    body: Object = {"uid": uid, "allowed": response.allowed, "status": status}
    if response.warnings:
        body["warnings"] = list(response.warnings)
    if response.patch:
        # The patch is a JSON []byte in the API: base64 of the serialized operations.
        body["patchType"] = "JSONPatch"
        body["patch"] = base64.b64encode(orjson.dumps(response.patch)).decode()
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": body}
