"""aimctl: a level-triggered, controller-runtime-style Kubernetes reconciler library for asyncio.

The public API is re-exported here as the library grows; see docs/architecture.md.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
