"""What a CRD says about a kind besides its schema: names, scope, printer columns.

Each top-level model carries one :class:`ResourceInfo` (``Model.resource``); the CRD generator reads
it, and so can anything that needs the plural or the API version without discovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PrinterColumn", "ResourceInfo"]


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry: a column of ``kubectl get``.

    ``priority`` 0 shows always; 1 only with ``-o wide``. kubectl prints ``name`` upper-cased.
    """

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class ResourceInfo:
    """Identity of a custom kind: group, version, names and how ``kubectl get`` shows it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``group/version``, as in an object's ``apiVersion``."""
        return f"{self.group}/{self.version}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's name: ``<plural>.<group>``."""
        return f"{self.plural}.{self.group}"
