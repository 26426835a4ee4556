"""`load_comparison`: the `Comparison` a run log holds, with its kept models."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._comparison import Comparison
from ._models import file_name, models_dir
from ._records import RunKey, RunRecord
from ._runlog import RunLog

PathLike = str | os.PathLike[str]

_NOT_CONFIG = ("kind", "format", "fingerprint", "hashes")


def load_comparison(path: PathLike | Sequence[PathLike]) -> Comparison:
    """Read back the comparison that `compare_strategies(..., output=path)` wrote.

    Several logs of one comparison (split by seed over machines, each with its own `output=`)
    combine into one `Comparison`: they must carry the same fingerprint (configuration,
    starting weights and data). Files are only read, never modified. Models kept beside a
    log (`keep_models`, in the `.models` folder next to it) are found and returned by
    `Comparison.model()`; the strategies are rebuilt from the log's header by
    `Comparison.strategy()`.

    Args:
        path: str or Path, or a list of them. The JSON-lines log(s) written with `output=`.

    Returns:
        A `Comparison` with every finished run of the log (an interrupted last record is
        left out) and the configuration it was written with.

    Raises:
        ValueError: If a file cannot be read, is not a transferkit comparison log or has a
            damaged record, if no path is given, or if the logs come from different
            configurations, weights or data.

    Example:
    ```python
    import tempfile
    from pathlib import Path

    import numpy as np
    from transferkit import compare_strategies, load_comparison
    from transferkit.models import lab_cnn

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28, 1), dtype="float32"), rng.integers(0, 10, 64)
    log = Path(tempfile.mkdtemp()) / "runs.jsonl"
    first = compare_strategies(
        lab_cnn(), ["feature_extractor"], train=(x[:32], y[:32]), validation=(x[32:48], y[32:48]),
        test=(x[48:], y[48:]), epochs=1, verbose=0, output=log,
    )
    again = load_comparison(log)
    assert again.to_dict() == first.to_dict()
    assert again.model().count_params() == first.model().count_params()
    ```
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        raise ValueError("`path` is empty: pass a log file written with `output=`.")
    logs = [RunLog.read(p) for p in paths]
    if len({header.get("fingerprint") for header, _ in logs}) != 1:
        raise ValueError(
            f"The logs {[str(p) for p in paths]} come from different configurations, starting "
            "weights or data (their fingerprints differ), so their runs cannot be combined."
        )
    config = {k: v for k, v in logs[0][0].items() if k not in _NOT_CONFIG}
    runs: dict[RunKey, RunRecord] = {}
    kept: dict[RunKey, Path] = {}
    for p, (_, records) in zip(paths, logs, strict=True):
        folder = models_dir(p)
        for record in records:
            runs.setdefault(record.key, record)
            if (folder / file_name(record.key)).is_file():
                kept.setdefault(record.key, folder / file_name(record.key))
    ordered = sorted(runs.values(), key=lambda run: _order(run, config))
    return Comparison(runs=tuple(ordered), config=config, kept=kept)


def _order(run: RunRecord, config: dict[str, Any]) -> tuple[float, ...]:
    """Runs in the order a comparison trains them: strategy, rung, rate in its grid, seed."""
    names = [s.get("name") for s in config.get("strategies", [])]
    grid = (config.get("learning_rates") or {}).get(run.strategy) or [None]
    strategy = names.index(run.strategy) if run.strategy in names else len(names)
    rate = grid.index(run.learning_rate) if run.learning_rate in grid else len(grid)
    return (strategy, math.inf if run.rung is None else run.rung, rate, run.seed)
