"""CRD generation from the AIM models: ``generate_crds()`` and the YAML written by
``aimctl manifests``.

    from aimctl.api.crd import generate_crds, render_crd
    for crd in generate_crds():
        print(render_crd(crd))
"""

from aimctl.api._crd import (
    crd_filename as crd_filename,
    crd_for as crd_for,
    generate_crds as generate_crds,
    openapi_schema as openapi_schema,
    render_crd as render_crd,
)
from aimctl.api._schema import SchemaError as SchemaError, to_structural as to_structural
from aimctl.api._structural import structural_errors as structural_errors

__all__ = [
    "SchemaError",
    "crd_filename",
    "crd_for",
    "generate_crds",
    "openapi_schema",
    "render_crd",
    "structural_errors",
    "to_structural",
]
