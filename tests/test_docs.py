"""The documentation is tested: its code runs, its API reference and its navigation are complete.

Every ```python block of a page runs, in order, in one namespace per page (in a temporary
working directory). A block is left out when the line before it is an HTML comment:
`<!-- skip -->` for genuinely slow or networked code, `<!-- backend: jax -->` for code that only
runs on one Keras backend (it runs in that backend's pass, after the unmarked blocks before
it). Unmarked blocks, like the docstring examples, run once in the matrix, in the
`EXAMPLES_BACKEND` pass (PyTorch, the quickest): they show how the API is used, and the unit
tests check its behaviour on every backend. So `<!-- backend: torch -->`, once the mark of
the slow blocks, now only keeps a block out of the other passes' page setup.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import keras
import pytest

import transferkit
from _fixtures import EXAMPLES_BACKEND
from transferkit.datasets import find_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUNNABLE_PAGES = ["tutorial.md", *sorted(p.name for p in (DOCS / "guide").glob("*.md"))]
NEEDS_FASHION_MNIST = {"tutorial.md"}
NEEDS = {"keras_hub.md": "keras_hub"}
"""Pages whose code needs an optional package (tests/_optional.py): they skip without it."""
API_MODULES = {"metrics", "timing", "datasets", "models"}
"""Public modules documented whole (`::: transferkit.metrics`) next to the top-level names."""

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_MARKER = re.compile(r"<!--\s*(skip|backend:\s*(\w+))\s*-->\s*$")


def _page_path(name: str) -> Path:
    return DOCS / name if (DOCS / name).exists() else DOCS / "guide" / name


def _marker_before(text: str, start: int) -> str | None:
    """`"skip"`, a backend's name, or None: the marker of the block starting at `start`."""
    marker = _MARKER.search(text[:start].rstrip("\n").rsplit("\n", 1)[-1])
    return None if marker is None else (marker.group(2) or marker.group(1))


def code_blocks(path: Path) -> list[tuple[int, str]]:
    """`(line number, code)` of each ```python block of a page that runs on this backend.

    In the `EXAMPLES_BACKEND` pass: the unmarked blocks and its own. In another pass: its own
    blocks, with the unmarked blocks before them (the page's setup they build on).
    """
    text = path.read_text(encoding="utf-8")
    here = keras.backend.backend()
    blocks = []
    for match in _FENCE.finditer(text):
        marker = _marker_before(text, match.start())
        if marker in (None, here):
            blocks.append((text.count("\n", 0, match.start()) + 2, match.group(1), marker))
    if here != EXAMPLES_BACKEND:
        own = [i for i, (_, _, marker) in enumerate(blocks) if marker == here]
        blocks = blocks[: own[-1] + 1] if own else []
    return [(line, code) for line, code, _ in blocks]


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, marks=[pytest.mark.needs(NEEDS[page])] if page in NEEDS else [])
        for page in RUNNABLE_PAGES
    ],
)
def test_page_code_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if page in NEEDS_FASHION_MNIST and find_fashion_mnist() is None and not os.environ.get("CI"):
        pytest.skip("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = _page_path(page)
    assert _FENCE.search(path.read_text(encoding="utf-8")), f"{page} has no ```python block"
    blocks = code_blocks(path)
    if not blocks:
        pytest.skip(f"no block of {page} runs in the {keras.backend.backend()} pass")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    try:
        for line, code in blocks:
            exec(
                compile(code, f"{path.relative_to(ROOT)}:{line}", "exec", dont_inherit=True),
                namespace,
            )
    finally:
        plt.close("all")
        if keras.backend.backend() == "jax":
            keras.distribution.set_distribution(None)


def test_markers_are_known() -> None:
    for path in DOCS.rglob("*.md"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines[1:], start=1):
            previous = lines[i - 1].strip()
            if line.startswith("```python") and previous.startswith("<!--"):
                assert _MARKER.search(previous), f"{path.name}:{i}: unknown marker {previous}"


def _api_targets() -> set[str]:
    targets = set()
    for path in (DOCS / "api").glob("*.md"):
        targets.update(re.findall(r"^:::\s+transferkit\.(\S+)\s*$", path.read_text(), re.M))
    return targets


def test_api_reference_documents_every_public_name() -> None:
    documented = _api_targets()
    assert documented - API_MODULES == set(transferkit.__all__) - {"__version__"}
    assert API_MODULES <= documented


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    in_nav = set(re.findall(r"[\w/.-]+\.md", config.split("\nnav:", 1)[1]))
    # docs/results/ holds what the examples and benchmarks wrote, included into pages
    pages = {
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if p.relative_to(DOCS).parts[0] != "results"
    }
    assert pages == in_nav


def test_pages_that_import_an_optional_package_need_it() -> None:
    for page in RUNNABLE_PAGES:
        text = _page_path(page).read_text(encoding="utf-8")
        imported = set(re.findall(r"^(?:import|from) (keras_hub)\b", text, re.MULTILINE))
        assert imported <= {NEEDS.get(page)}, f"{page} imports {imported}: add it to NEEDS"
    assert set(NEEDS) <= set(RUNNABLE_PAGES)


def test_every_runnable_page_runs_in_some_pass() -> None:
    for page in RUNNABLE_PAGES:
        text = _page_path(page).read_text(encoding="utf-8")
        markers = [_marker_before(text, m.start()) for m in _FENCE.finditer(text)]
        assert any(marker != "skip" for marker in markers), f"{page}: no block runs anywhere"
