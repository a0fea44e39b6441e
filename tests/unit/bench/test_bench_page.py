"""The generated docs/benchmarks.md: sections in order, headings under the page's title."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import normalize_headings, ordered_sections, render_page


def test_normalize_headings_makes_the_highest_heading_level_two() -> None:
    text = "# Workqueue\n\nintro\n\n## Throughput\n\n```sh\n# a shell comment\n```"
    assert normalize_headings(text).splitlines() == [
        "## Workqueue",
        "",
        "intro",
        "",
        "### Throughput",
        "",
        "```sh",
        "# a shell comment",
        "```",
    ]


def test_normalize_headings_leaves_level_two_sections_alone() -> None:
    text = "## Converge\n\n### Live, N = 100"
    assert normalize_headings(text) == text


def test_sections_come_in_benchmark_order_then_by_name(tmp_path: Path) -> None:
    for name in ("zeta", "latency", "converge", "alpha", "workqueue"):
        (tmp_path / f"{name}.md").write_text(f"# {name}\n")
    assert [p.stem for p in ordered_sections(tmp_path)] == [
        "converge",
        "latency",
        "workqueue",
        "alpha",
        "zeta",
    ]


def test_render_page_puts_every_section_under_the_title(tmp_path: Path) -> None:
    (tmp_path / "converge.md").write_text("## Converge\n\nnumbers\n")
    (tmp_path / "informer.md").write_text("# Informer\n\n## Memory\n")
    page = render_page(tmp_path)
    assert page.startswith("# Benchmarks\n")
    assert page.count("\n# ") == 0
    assert "## Converge" in page
    assert "## Informer\n\n### Memory" in page
    assert page.index("## Converge") < page.index("## Informer")
