"""Webhooks: defaulting and validating admission, CRD conversion, served over TLS.

controller-runtime's third pillar (kubernetes-sigs/controller-runtime: pkg/webhook): typed
admission handlers with the AdmissionReview v1 contract (``_review``, ``_admission``), hub and
spoke conversion with the ConversionReview v1 contract (``_conversion``), an HTTPS server with
hot-reloaded certificates and controller-runtime's metrics (``_server``, ``_certwatcher``,
``_metrics``), the builder behind ``manager.webhook()`` (``_builder``), the webhook
configurations and CRD conversion stanza (``_manifests``), and a self-signed CA for local runs
(``_selfsigned``).
"""

from aimctl.webhook._admission import (
    AdmissionHandler as AdmissionHandler,
    Defaulter as Defaulter,
    DefaulterFunc as DefaulterFunc,
    DefaultingHandler as DefaultingHandler,
    Denied as Denied,
    ValidatingHandler as ValidatingHandler,
    Validator as Validator,
    Warnings as Warnings,
)
from aimctl.webhook._builder import (
    WebhookBuilder as WebhookBuilder,
    WebhookRegistration as WebhookRegistration,
    mutate_path as mutate_path,
    validate_path as validate_path,
)
from aimctl.webhook._certwatcher import CertWatcher as CertWatcher
from aimctl.webhook._conversion import (
    ConversionError as ConversionError,
    Convertible as Convertible,
    Hub as Hub,
    HubSpoke as HubSpoke,
    convert_review as convert_review,
)
from aimctl.webhook._jsonpatch import create_patch as create_patch
from aimctl.webhook._manifests import (
    ServiceReference as ServiceReference,
    conversion_stanza as conversion_stanza,
    webhook_configurations as webhook_configurations,
)
from aimctl.webhook._metrics import LATENCY_BUCKETS as LATENCY_BUCKETS
from aimctl.webhook._review import (
    AdmissionRequest as AdmissionRequest,
    AdmissionResponse as AdmissionResponse,
    Operation as Operation,
    UserInfo as UserInfo,
    allowed as allowed,
    denied as denied,
    errored as errored,
    parse_admission_review as parse_admission_review,
    render_admission_review as render_admission_review,
)
from aimctl.webhook._selfsigned import SelfSignedCerts as SelfSignedCerts
from aimctl.webhook._server import (
    CONVERSION_PATH as CONVERSION_PATH,
    DEFAULT_CERT_DIR as DEFAULT_CERT_DIR,
    WebhookServer as WebhookServer,
)

__all__ = [
    "CONVERSION_PATH",
    "DEFAULT_CERT_DIR",
    "LATENCY_BUCKETS",
    "AdmissionHandler",
    "AdmissionRequest",
    "AdmissionResponse",
    "CertWatcher",
    "ConversionError",
    "Convertible",
    "Defaulter",
    "DefaulterFunc",
    "DefaultingHandler",
    "Denied",
    "Hub",
    "HubSpoke",
    "Operation",
    "SelfSignedCerts",
    "ServiceReference",
    "UserInfo",
    "ValidatingHandler",
    "Validator",
    "Warnings",
    "WebhookBuilder",
    "WebhookRegistration",
    "WebhookServer",
    "allowed",
    "conversion_stanza",
    "convert_review",
    "create_patch",
    "denied",
    "errored",
    "mutate_path",
    "parse_admission_review",
    "render_admission_review",
    "validate_path",
    "webhook_configurations",
]
