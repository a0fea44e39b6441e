"""Where the API server is and how to authenticate: kubeconfig or in-cluster.

Owns the translation of kubernetes-asyncio's ``Configuration`` (its loaders understand every
kubeconfig form: files or inline data, tokens, token files, basic auth, exec plugins, OIDC,
in-cluster service-account tokens) into what an aiohttp session needs: a base URL, an
``ssl.SSLContext`` and an ``Authorization`` header that is refreshed when it expires.

Refresh:
- in-cluster: kubernetes-asyncio's own ``refresh_api_key_hook`` re-reads the projected token
  file every minute; we call it through ``Configuration.auth_settings()`` on every request.
- exec plugins: the credential is re-run when its ``expirationTimestamp`` has passed, and on a 401
  (``refresh_credentials()``), as client-go does for credentials without an expiry.
- static tokens and client certificates are read once.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import incluster_config, kube_config
from kubernetes_asyncio.config.config_exception import ConfigException

__all__ = ["ClusterConfig", "load_incluster", "load_kubeconfig"]


@dataclass
class ClusterConfig:
    """A resolved connection: base URL, TLS and credentials.

    Attributes:
        host: base URL without a trailing slash, e.g. ``https://127.0.0.1:6443``.
        ssl_context: TLS settings (CA, client certificate); None for plain ``http``.
        tls_server_name: SNI/verification name when it differs from the host (kubeconfig
            ``tls-server-name``), else None.
        proxy: a proxy URL from the kubeconfig, else None.
        configuration: the kubernetes-asyncio ``Configuration`` behind it (for code that also
            wants a generated-client ``ApiClient``).
    """

    host: str
    ssl_context: ssl.SSLContext | None
    tls_server_name: str | None
    proxy: str | None
    configuration: Any
    _on_unauthorized: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)

    @property
    def host_port(self) -> str:
        """``host:port`` as controller-runtime's ``host`` metric label shows it."""
        parts = urlsplit(self.host)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"

    async def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header for the next request (refreshed when due)."""
        settings = await self.configuration.auth_settings()
        bearer = settings.get("BearerToken")
        if bearer and bearer.get("value"):
            return {"Authorization": str(bearer["value"])}
        return {}

    async def refresh_credentials(self) -> bool:
        """Re-acquire credentials after a 401. Returns False when nothing can be refreshed."""
        if self._on_unauthorized is None:
            return False
        await self._on_unauthorized()
        return True


def _ssl_context(configuration: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        ctx.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _from_configuration(
    configuration: Any, on_unauthorized: Callable[[], Awaitable[None]] | None
) -> ClusterConfig:
    host = str(configuration.host).rstrip("/")
    https = host.startswith("https://")
    return ClusterConfig(
        host=host,
        ssl_context=_ssl_context(configuration) if https else None,
        tls_server_name=getattr(configuration, "tls_server_name", None),
        proxy=getattr(configuration, "proxy", None),
        configuration=configuration,
        _on_unauthorized=on_unauthorized,
    )


def _require_file(path: str) -> None:
    # Else kubernetes-asyncio reports a missing file as "Expected key current-context".
    if not os.path.isfile(os.path.expanduser(path)):
        raise ConfigException(f"kubeconfig {path} does not exist")


def _default_kubeconfig_path() -> str:
    env = os.environ.get("KUBECONFIG", "")
    return env.split(os.pathsep)[0] if env else os.path.expanduser("~/.kube/config")


async def load_kubeconfig(path: str | None = None, context: str | None = None) -> ClusterConfig:
    """Load a kubeconfig file (``$KUBECONFIG``'s first entry, else ``~/.kube/config``).

    Args:
        path: the kubeconfig file. Default: ``$KUBECONFIG`` or ``~/.kube/config``.
        context: the context to use. Default: the file's ``current-context``.

    Raises:
        kubernetes_asyncio.config.ConfigException: the file or context is unusable.
    """
    if path is None:
        path = _default_kubeconfig_path()
    _require_file(path)
    configuration = type.__call__(Configuration)
    loader = await kube_config.load_kube_config(
        config_file=path,
        context=context,
        client_configuration=configuration,
        persist_config=False,
    )
    on_unauthorized: Callable[[], Awaitable[None]] | None = None
    user = loader._user  # the loader keeps the selected user section here
    if user is not None and "exec" in user:

        async def refresh_if_expired(conf: Any) -> None:
            # load_from_exec_plugin returns at once while the cached credential is unexpired.
            if hasattr(loader, "exec_plugin_expiry"):
                await loader.load_from_exec_plugin()
                conf.api_key["BearerToken"] = loader.token

        async def rerun_plugin() -> None:
            if hasattr(loader, "exec_plugin_expiry"):
                del loader.exec_plugin_expiry
            await loader.load_from_exec_plugin()
            if hasattr(loader, "token"):
                configuration.api_key["BearerToken"] = loader.token

        configuration.refresh_api_key_hook = refresh_if_expired
        on_unauthorized = rerun_plugin
    return _from_configuration(configuration, on_unauthorized)


async def load_incluster() -> ClusterConfig:
    """Load the pod's service-account configuration (token re-read every minute).

    Raises:
        kubernetes_asyncio.config.ConfigException: not running in a pod.
    """
    configuration = type.__call__(Configuration)
    incluster_config.load_incluster_config(  # type: ignore[no-untyped-call]
        client_configuration=configuration
    )
    # kubernetes-asyncio installs refresh_api_key_hook, re-reading the token file every minute.
    return _from_configuration(configuration, None)
