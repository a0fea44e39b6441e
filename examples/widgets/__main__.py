"""``python -m examples.widgets run [--kubeconfig PATH]`` or ``... manifests``.

``run`` serves the webhooks on 9443 with the pair in the default certificate directory (a
mounted Secret in a cluster) and runs the controller; ``manifests`` rewrites ``manifests/``.
"""

from __future__ import annotations

import asyncio
import sys

from aimctl.client import load_kubeconfig
from aimctl.manager import Manager
from examples.widgets.setup import MANIFESTS_DIR, render_manifests, setup


async def _run(kubeconfig: str | None) -> None:
    config = await load_kubeconfig(kubeconfig)
    manager = Manager(config)
    setup(manager)
    await manager.run(handle_signals=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["manifests"]:
        MANIFESTS_DIR.mkdir(exist_ok=True)
        for name, text in render_manifests().items():
            (MANIFESTS_DIR / name).write_text(text)
        return
    if argv[:1] == ["run"]:
        kubeconfig = argv[2] if argv[1:2] == ["--kubeconfig"] else None
        asyncio.run(_run(kubeconfig))
        return
    sys.exit("usage: python -m examples.widgets run [--kubeconfig PATH] | manifests")


if __name__ == "__main__":
    main(sys.argv[1:])
