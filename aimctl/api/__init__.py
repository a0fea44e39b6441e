"""aimctl.api: the AIM API as pydantic models, Kubernetes quantities, and CRD generation.

- :mod:`aimctl.api.v1alpha1`: AIMKVCache and AIMService (``aim.silogen.ai/v1alpha1``).
- :mod:`aimctl.api.quantity`: parse, compare and format Kubernetes quantities.
- :mod:`aimctl.api.crd`: the CustomResourceDefinitions generated from the models
  (``aimctl manifests`` writes them to ``manifests/crds/``).
"""

from aimctl.api import quantity as quantity

__all__ = ["quantity"]
