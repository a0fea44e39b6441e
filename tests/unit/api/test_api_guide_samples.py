"""Every YAML example of the user guide is covered by a file in manifests/samples.

The guide (using-kv-cache.md, the project's contract) is kept in docs/; where the shared folder
it comes from sits next to the repository, the copy must equal it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "manifests" / "samples"
GUIDE = REPO / "docs" / "using-kv-cache.md"
_SHARED_GUIDE = REPO.parent / "shared" / "seed" / "using-kv-cache.md"


def _guide_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def _sample_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(SAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _contains(big: Any, small: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _contains(big[k], v) for k, v in small.items()
        )
    return bool(big == small)


def _places(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a guide fragment may sit in a sample: the object, its spec, kvCache, storage."""
    spec = doc.get("spec", {})
    kv = spec.get("kvCache", {})
    return [doc, spec, {"kvCache": kv}, {"storage": kv.get("storage", spec.get("storage"))}]


@pytest.mark.parametrize("block", _guide_blocks(), ids=lambda b: b.split("\n", 1)[0][:40])
def test_guide_example_has_a_sample(block: str) -> None:
    samples = _sample_docs()
    for fragment in (d for d in yaml.safe_load_all(block) if d):
        assert any(_contains(place, fragment) for doc in samples for place in _places(doc)), (
            f"no sample in manifests/samples contains:\n{yaml.safe_dump(fragment)}"
        )


def test_the_guide_has_the_expected_number_of_examples() -> None:
    assert len(_guide_blocks()) == 13


def test_the_guide_copy_equals_the_shared_original_when_present() -> None:
    if _SHARED_GUIDE.exists():  # a clean clone elsewhere has only the copy
        assert GUIDE.read_text() == _SHARED_GUIDE.read_text(), (
            f"docs/using-kv-cache.md differs from {_SHARED_GUIDE}: copy the new guide over"
        )
