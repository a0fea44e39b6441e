"""aimctl.client: configuration, raw JSON REST, discovery and typed API errors.

Start with ``RestClient.from_kubeconfig()`` and ``RESTMapper(rest)``; objects are plain
``Object`` dicts, kinds are ``GVK`` and discovery turns them into ``Resource`` paths.
"""

from aimctl.client._client import CacheReader as CacheReader, Client as Client
from aimctl.client._config import (
    ClusterConfig as ClusterConfig,
    load_incluster as load_incluster,
    load_kubeconfig as load_kubeconfig,
)
from aimctl.client._errors import (
    AlreadyExists as AlreadyExists,
    ApiError as ApiError,
    BadRequest as BadRequest,
    ClientError as ClientError,
    Conflict as Conflict,
    Forbidden as Forbidden,
    Gone as Gone,
    Invalid as Invalid,
    NotFound as NotFound,
    ServerError as ServerError,
    TooManyRequests as TooManyRequests,
    TransportError as TransportError,
    Unauthorized as Unauthorized,
    WatchStalled as WatchStalled,
    api_error_from_status as api_error_from_status,
)
from aimctl.client._mapper import NoKindMatch as NoKindMatch, RESTMapper as RESTMapper
from aimctl.client._recorder import EventRecorder as EventRecorder, EventType as EventType
from aimctl.client._rest import (
    RestClient as RestClient,
    RestStats as RestStats,
    TokenBucket as TokenBucket,
    WatchStream as WatchStream,
)
from aimctl.client._types import (
    GVK as GVK,
    Object as Object,
    Resource as Resource,
    WatchEvent as WatchEvent,
    WatchEventType as WatchEventType,
)

__all__ = [
    "CacheReader",
    "Client",
    "EventRecorder",
    "EventType",
    "GVK",
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "ClientError",
    "ClusterConfig",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NoKindMatch",
    "NotFound",
    "Object",
    "RESTMapper",
    "Resource",
    "RestClient",
    "RestStats",
    "ServerError",
    "TokenBucket",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "WatchEvent",
    "WatchEventType",
    "WatchStalled",
    "WatchStream",
    "api_error_from_status",
    "load_incluster",
    "load_kubeconfig",
]
