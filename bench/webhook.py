"""Admission round trip: ``python -m bench.webhook``.

Creates Widgets (examples/widgets) against an envtest kube-apiserver, interleaving, in the same
run, creates in a namespace where the Widget webhooks are registered and in one where they are
not (the configurations select namespaces by ``kubernetes.io/metadata.name``):

- ``v2, no webhook``: the apiserver alone;
- ``v2, webhooks``: + the mutating webhook (a JSON patch) and the validating one (which reads
  a ConfigMap from the apiserver), both over TLS to ``https://127.0.0.1:<port>``;
- ``v1, webhooks``: the same at v1, so the apiserver also converts v1 -> v2 for the webhooks
  and for storage, and v2 -> v1 for the answer (three ConversionReviews through ``/convert``).

Per request: p50/p99 client-observed latency, the added latency against ``v2, no webhook``,
and the server-side handling time from ``controller_runtime_webhook_latency_seconds``. The
webhook server, the client and the measurement share one event loop (one process), as a small
operator would. Writes ``docs/bench-results/webhook.md`` (``--out``; ``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from aimctl.client import GVK, ApiError, Object, RestClient
from aimctl.envtest import ControlPlane
from aimctl.envtest._ports import free_ports
from aimctl.webhook import (
    SelfSignedCerts,
    WebhookBuilder,
    WebhookServer,
    conversion_stanza,
    webhook_configurations,
)
from bench._stats import md_table, percentile
from examples.widgets.api import GROUP, widget_crd
from examples.widgets.setup import register_webhooks

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "bench-results"  # as bench._harness
ADMISSION = "/apis/admissionregistration.k8s.io/v1"


class RestReader:
    """The validator's live reads, on the benchmark's REST client."""

    def __init__(self, rest: RestClient) -> None:
        self.rest = rest

    async def get_live(self, gvk: GVK, name: str, namespace: str = "") -> Object | None:
        try:
            out: Object = await self.rest.request(
                "GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}"
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return out


def _widget(version: str, name: str) -> Object:
    spec: Object = (
        {"configMapName": "cfg"} if version == "v1" else {"configMapRef": {"name": "cfg"}}
    )
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


async def _namespace(rest: RestClient, prefix: str) -> str:
    ns = await rest.request(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": prefix}},
    )
    name: str = ns["metadata"]["name"]
    await rest.request(
        "POST",
        f"/api/v1/namespaces/{name}/configmaps",
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}},
    )
    return name


async def run(cp: ControlPlane, n: int, warmup: int) -> tuple[dict[str, list[float]], float]:
    port = free_ports(1)[0]
    certs = SelfSignedCerts(Path(tempfile.mkdtemp(prefix="bench-webhook-")))
    certs.issue()
    base = f"https://127.0.0.1:{port}"
    await asyncio.to_thread(
        cp.install_crds, [widget_crd(conversion_stanza(url=base, ca_bundle=certs.ca_bundle))]
    )
    rest = await RestClient.from_kubeconfig(str(cp.kubeconfig))
    server = WebhookServer(host="127.0.0.1", port=port, cert_dir=certs.cert_dir)
    registry = CollectorRegistry()
    server.register_metrics(registry)
    registration = register_webhooks(WebhookBuilder(server), RestReader(rest))
    await server.start()
    try:
        hooked = await _namespace(rest, "bench-hooked-")
        plain = await _namespace(rest, "bench-plain-")
        for config in webhook_configurations(
            "bench-widgets", [registration], url=base, ca_bundle=certs.ca_bundle
        ):
            for hook in config["webhooks"]:
                hook["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": hooked}}
            await rest.request("POST", f"{ADMISSION}/{config['kind'].lower()}s", body=config)
        # Wait until the apiserver calls the webhooks (the configurations load asynchronously).
        for i in range(600):
            probe = await rest.request(
                "POST",
                f"/apis/{GROUP}/v2/namespaces/{hooked}/widgets",
                params={"dryRun": "All"},
                body=_widget("v2", f"probe{i}"),
            )
            if probe["spec"].get("replicas") == 1:
                break
            await asyncio.sleep(0.1)
        cases = {
            "v2, no webhook": (plain, "v2"),
            "v2, webhooks": (hooked, "v2"),
            "v1, webhooks": (hooked, "v1"),
        }
        samples: dict[str, list[float]] = {case: [] for case in cases}
        for i in range(warmup + n):
            for case, (ns, version) in cases.items():  # interleaved: same load for each
                path = f"/apis/{GROUP}/{version}/namespaces/{ns}/widgets"
                start = time.perf_counter()
                await rest.request("POST", path, body=_widget(version, f"w{version}-{i}"))
                if i >= warmup:
                    samples[case].append(time.perf_counter() - start)
        total = 0.0
        count = 0.0
        for path in (p for p in server.paths if p != "/convert"):
            total += (
                registry.get_sample_value(
                    "controller_runtime_webhook_latency_seconds_sum", {"webhook": path}
                )
                or 0.0
            )
            count += (
                registry.get_sample_value(
                    "controller_runtime_webhook_latency_seconds_count", {"webhook": path}
                )
                or 0.0
            )
        return samples, (total / count if count else 0.0)
    finally:
        await server.stop()
        await rest.aclose()


def report(samples: dict[str, list[float]], handling: float, n: int) -> str:
    from bench._harness import machine_info

    base = samples["v2, no webhook"]
    b50, b99 = percentile(base, 50), percentile(base, 99)
    rows = []
    for case, values in samples.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        rows.append(
            [
                case,
                f"{p50 * 1000:.1f}",
                f"{p99 * 1000:.1f}",
                f"{(p50 - b50) * 1000:+.1f}",
                f"{(p99 - b99) * 1000:+.1f}",
            ]
        )
    info = machine_info()
    lines = [
        "## Webhooks: admission round trip",
        "",
        f"`python -m bench.webhook --n {n}`: {n} creates per case, interleaved in one run "
        "(see `bench/webhook.py`). Added = this case minus `v2, no webhook`, at the same "
        "percentile.",
        "",
        md_table(
            ["case", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"],
            rows,
        ),
        "",
        f"- Server-side handling per admission request (mean of "
        f"`controller_runtime_webhook_latency_seconds`, decode + handler + patch + encode, "
        f"the validator's live ConfigMap read included): {handling * 1000:.2f} ms.",
        f"- Machine: {info['nproc']} cores, {info['cpu']}, load {info['load (1, 5, 15 min)']} "
        f"(shared with other jobs), Python {info['python']}, {info['date']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook", description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="creates per case (default 200)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS / "webhook.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with ControlPlane() as cp:
        samples, handling = asyncio.run(run(cp, args.n, args.warmup))
    text = report(samples, handling, args.n)
    print(text)
    if not args.no_write:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
