"""`Comparison.to_html`: a self-contained report, checked as HTML and rendered by Chromium."""

from __future__ import annotations

import base64
import html.parser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import transferkit as tk  # noqa: E402
from _train_helpers import blobs, mlp, split  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AWKWARD = 'fe <b>&"'
"""A strategy label that is also HTML: the report must show it as text."""


@pytest.fixture(scope="module")
def comparison() -> tk.Comparison:
    """2 strategies x 2 seeds of a tiny MLP, 1 epoch: a real, small comparison."""
    train, validation, test = split(*blobs(160), 96, 32, 32)
    return tk.compare_strategies(
        mlp(), ["full", tk.FeatureExtractor(label=AWKWARD)], train=train,
        validation=validation, test=test, epochs=1, seeds=2, verbose=0,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class Page(html.parser.HTMLParser):
    """The tables (rows of cell texts, by id), images and preformatted texts of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.pre: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._in_pre = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = self.tables.setdefault(attributes.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attributes)
        elif tag == "pre":
            self._in_pre, self._cell = True, []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "pre" and self._cell is not None:
            self.pre.append("".join(self._cell))
            self._in_pre, self._cell = False, None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_report_has_every_table_row_plot_and_the_record(comparison, tmp_path):
    path = comparison.to_html(tmp_path / "out" / "report.html")
    assert path == tmp_path / "out" / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "<b>" not in text and AWKWARD not in text  # the label is escaped everywhere
    page = Page(text)

    summary = page.tables["summary"]
    header = summary[0]
    assert header[:3] == ["strategy", "metric", "n"]
    assert "mean ± std" in header and "95% CI" in header
    expected = comparison.summary()
    assert len(summary) == 1 + len(expected)
    for cells, row in zip(summary[1:], expected, strict=True):
        assert cells[:3] == [row.strategy, row.metric, "2"]
        digits = 2 if row.metric == "train_seconds" else 4
        mean_std = cells[header.index("mean ± std")]
        assert mean_std == f"{row.mean:.{digits}f} ± {row.std:.{digits}f}"
        ci = cells[header.index("95% CI")]
        assert ci == f"[{row.ci95_low:.{digits}f}, {row.ci95_high:.{digits}f}]"

    runs = page.tables["runs"]
    assert runs[0][:3] == ["strategy", "seed", "accuracy"]
    assert [(r[0], r[1]) for r in runs[1:]] == [
        (run.strategy, str(run.seed)) for run in comparison.runs
    ]
    for cells, run in zip(runs[1:], comparison.runs, strict=True):
        assert cells[2] == f"{run.metrics.accuracy:.4f}"
        assert cells[runs[0].index("cache")] == ("used" if run.cache.used else "not used")
        assert cells[runs[0].index("resumed")] == "no"

    assert len(page.images) == 2
    for image in page.images:
        assert image["alt"]
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix)
        assert base64.b64decode(image["src"][len(prefix) :]).startswith(PNG_MAGIC)

    machine, config, command = page.pre
    assert keras.backend.backend() in machine and "cores" in machine
    assert json.loads(config) == json.loads(json.dumps(comparison.config, default=str))
    assert Path(sys.argv[0]).name in command
    assert len(plt.get_fignums()) == 0  # the report's figures are closed


def test_report_without_matplotlib_has_the_tables_and_says_how_to_add_plots(
    comparison, tmp_path, monkeypatch
):
    for name in ("matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib` raises ImportError
    text = comparison.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.images == []
    assert "pip install transferkit[plot]" in text
    assert len(page.tables["runs"]) == 1 + len(comparison.runs)


def test_report_rejects_a_folder_and_an_empty_comparison(comparison, tmp_path):
    with pytest.raises(ValueError, match=r"`path` must be a file name.*Received: path="):
        comparison.to_html(tmp_path)
    with pytest.raises(ValueError, match="has no runs"):
        tk.Comparison(runs=()).to_html(tmp_path / "empty.html")
    assert list(tmp_path.iterdir()) == []  # nothing written


def chromium(*args: str, profile: Path) -> str:
    result = subprocess.run(
        [
            shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args,
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="renders HTML, not Keras: runs in the TensorFlow pass of the backend matrix only",
)
@pytest.mark.needs("chromium")  # .ci/run installs it and requires it: there a missing one fails
def test_chromium_renders_the_report_with_its_tables_and_plots(comparison, tmp_path):
    path = comparison.to_html(tmp_path / "report.html")
    screenshot = tmp_path / "report.png"
    chromium(
        f"--screenshot={screenshot}", "--window-size=1200,2000", path.as_uri(),
        profile=tmp_path / "profile",
    )  # fmt: skip
    assert screenshot.read_bytes().startswith(PNG_MAGIC)
    assert screenshot.stat().st_size > 10_000

    page = Page(chromium("--dump-dom", path.as_uri(), profile=tmp_path / "profile"))
    strategies = [row[0] for row in page.tables["runs"][1:]]
    assert strategies == [run.strategy for run in comparison.runs]
    assert set(strategies) == {"full", AWKWARD}
    assert {row[0] for row in page.tables["summary"][1:]} == {"full", AWKWARD}
    assert len(page.images) == 2

    # The plots were drawn, not only linked: matplotlib's first colour (tab:blue, which the
    # page's own style never uses) fills pixels of the screenshot.
    pixels = (matplotlib.image.imread(screenshot)[..., :3] * 255).round()
    blue = np.all(np.abs(pixels - np.array([31, 119, 180])) <= 3, axis=-1)
    assert blue.sum() > 50  # (a page without the plots has none)
