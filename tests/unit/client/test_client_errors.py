"""Typed API errors from Status objects."""

from __future__ import annotations

import pytest

from aimctl.client import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    WatchStalled,
    api_error_from_status,
)


def status(code: int, reason: str, message: str = "m", **details: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    if details:
        body["details"] = details
    return body


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", BadRequest),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
        (418, "Teapot", ApiError),
    ],
)
def test_each_status_code_maps_to_its_error_class(code: int, reason: str, cls: type) -> None:
    err = api_error_from_status(code, status(code, reason, "boom"), method="GET", path="/x")
    assert type(err) is cls
    assert err.status == code
    assert err.reason == reason
    assert err.message == "boom"
    assert str(err) == f"{code} {reason}: boom (GET /x)"
    assert isinstance(err, ClientError)


def test_already_exists_is_a_conflict() -> None:
    err = api_error_from_status(409, status(409, "AlreadyExists"))
    assert isinstance(err, Conflict)


def test_details_and_retry_after_come_from_header_or_status() -> None:
    err = api_error_from_status(
        429, status(429, "TooManyRequests", retryAfterSeconds=3), retry_after_header=None
    )
    assert isinstance(err, TooManyRequests)
    assert err.retry_after == 3
    assert err.details == {"retryAfterSeconds": 3}
    from_header = api_error_from_status(429, None, retry_after_header="5")
    assert isinstance(from_header, TooManyRequests)
    assert from_header.retry_after == 5


def test_a_watch_error_event_is_classified_by_its_status_code() -> None:
    err = api_error_from_status(200, status(410, "Expired", "too old resource version: 1"))
    assert isinstance(err, Gone)
    assert err.status == 410


def test_non_status_bodies_become_the_message() -> None:
    err = api_error_from_status(502, b"<html>bad gateway</html>")
    assert isinstance(err, ServerError)
    assert err.message == "<html>bad gateway</html>"
    assert err.reason == ""


def test_transport_errors_are_client_errors_but_not_api_errors() -> None:
    assert issubclass(WatchStalled, TransportError)
    assert issubclass(TransportError, ClientError)
    assert not issubclass(TransportError, ApiError)
