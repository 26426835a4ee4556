"""`load_comparison`: the `Comparison` a run log holds, with its kept models."""

from __future__ import annotations

import os

from ._comparison import Comparison
from ._models import file_name, models_dir
from ._runlog import RunLog

_NOT_CONFIG = ("kind", "format", "fingerprint", "hashes")


def load_comparison(path: str | os.PathLike[str]) -> Comparison:
    """Read back the comparison that `compare_strategies(..., output=path)` wrote.

    The file is only read, never modified. Models kept beside the log (`keep_models`, in the
    `.models` folder next to it) are found and returned by `Comparison.model()`; the
    strategies are rebuilt from the log's header by `Comparison.strategy()`.

    Args:
        path: str or Path. The JSON-lines log written with `output=`.

    Returns:
        A `Comparison` with every finished run of the log (an interrupted last record is
        left out) and the configuration it was written with.

    Raises:
        ValueError: If the file cannot be read, is not a transferkit comparison log, or has a
            damaged record.

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
    header, records = RunLog.read(path)
    config = {k: v for k, v in header.items() if k not in _NOT_CONFIG}
    folder = models_dir(path)
    kept = {
        record.key: folder / file_name(record.key)
        for record in records
        if (folder / file_name(record.key)).is_file()
    }
    return Comparison(runs=tuple(records), config=config, kept=kept)
