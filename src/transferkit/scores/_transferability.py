"""Transferability before training: score the features of one or more models at several cuts."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from .. import _serial
from .._labels import to_labels
from .._validate import check_choice, check_lengths, check_positive_int, sample_count, unpack_pair
from ..freezing import leaf_layers
from ..freezing._heads import cut_outputs, resolve_cut
from ..freezing._layers import Boundary, ensure_built
from ..timing import Timer
from ..types import Model
from ._hscore import hscore
from ._logme import logme

METHODS: dict[str, Callable[[Any, Any], float]] = {"logme": logme, "hscore": hscore}
POOLINGS = ("avg", "max")
_POOLING_LAYERS: tuple[type, ...] = tuple(
    getattr(keras.layers, f"{kind}Pooling{dims}D")
    for kind in ("Max", "Average", "GlobalMax", "GlobalAverage")
    for dims in (1, 2, 3)
)


@dataclass(frozen=True)
class TransferabilityRow(_serial.Record):
    """The score of one model's features at one cut.

    Attributes:
        model: The model's name (its key when models were given as a mapping).
        cut: Path of the last leaf layer kept (`leaf_layers(model)[index - 1].path`).
        index: Number of leaf layers kept: `as_feature_extractor(model, cut=index)` gives
            these features (before flattening).
        feature_dim: Dimension of the flattened (or pooled) features.
        score: The score (higher is better).
        seconds: Time to score these features (the forward pass not included).
        forward_seconds: Time of the one forward pass that computed the features of every
            cut of this model.

    Example:
    ```python
    from transferkit import TransferabilityRow

    row = TransferabilityRow("cnn", "flatten", 5, 3136, -0.71, 1.2, 3.4)
    assert TransferabilityRow.from_dict(row.to_dict()) == row
    ```
    """

    model: str
    cut: str
    index: int
    feature_dim: int
    score: float
    seconds: float
    forward_seconds: float


@dataclass(frozen=True)
class TransferabilityTable(_serial.Record):
    """The result of `transferability`: one row per (model, cut), in the order computed.

    Attributes:
        method: `"logme"` or `"hscore"`.
        pooling: None (flattened features), `"avg"` or `"max"`.
        num_samples: Number of samples scored.
        num_classes: Number of classes present in the labels.
        rows: One `TransferabilityRow` per model and cut.

    Example:
    ```python
    from transferkit import TransferabilityRow, TransferabilityTable

    rows = (
        TransferabilityRow("cnn", "max_pooling2d_1", 4, 3136, -0.9, 1.0, 3.0),
        TransferabilityRow("cnn", "dense", 6, 128, -0.6, 0.1, 3.0),
    )
    table = TransferabilityTable("logme", None, 1000, 10, rows)
    assert table.best().cut == "dense" and abs(table.seconds - 4.1) < 1e-9
    assert TransferabilityTable.from_dict(table.to_dict()) == table
    ```
    """

    method: str
    pooling: str | None
    num_samples: int
    num_classes: int
    rows: tuple[TransferabilityRow, ...]

    def best(self) -> TransferabilityRow:
        """The row with the highest score (the first among ties)."""
        return max(self.rows, key=lambda row: row.score)

    @property
    def seconds(self) -> float:
        """Total time: each model's forward pass once, plus scoring every row."""
        forward = {row.model: row.forward_seconds for row in self.rows}
        return sum(forward.values()) + sum(row.seconds for row in self.rows)

    def to_markdown(self) -> str:
        """The rows as a Markdown table."""
        lines = [
            f"| model | cut | index | feature dim | {self.method} | seconds |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.model} | {r.cut} | {r.index} | {r.feature_dim} | {r.score:.4f} "
            f"| {r.seconds:.2f} |"
            for r in self.rows
        ]
        return "\n".join(lines)


def transferability(
    model: Model | Mapping[str, Model] | Sequence[Model],
    data: tuple[Any, Any],
    *,
    cuts: Boundary | Sequence[Boundary] | None = None,
    method: str = "logme",
    pooling: str | None = None,
    batch_size: int = 256,
) -> TransferabilityTable:
    """Scores how well the features of `model` at one or more cuts suit `data`, before training.

    For each model, one forward pass through a frozen copy computes the activations at every
    cut at once (a multi-output model over the leaf layers, as `as_feature_extractor` cuts
    them); each activation is flattened (or pooled) and scored. Use it to choose where to cut
    a backbone for a feature extractor, or to rank backbones for a data set: scores compare
    features of one data set, higher is better. Nothing is trained, and no model is mutated.

    LogME (the default) is You et al.'s ICML 2021 score (see `logme`); `"hscore"` is Bao et
    al.'s 2019 H-score (see `hscore`). Both cost one eigendecomposition of a `min(n, d)`
    square matrix per cut, in float64: for thousands of samples and tens of thousands of
    dimensions (a flattened early convolution) that costs more than an epoch of training;
    `pooling="avg"` scores the per-channel means instead.

    Args:
        model: A built Functional or Sequential `keras.Model`; or several, to rank them: a
            mapping `{name: model}` or a list (named by `model.name`).
        data: `(x, y)`: NumPy inputs and integer or one-hot labels of the target task.
        cuts: None, or one or a list of int, str or `keras.layers.Layer`: the last leaf layer
            kept, as `as_feature_extractor(cut=...)` takes it (applied to every model).
            Defaults to `None`: the feature extractor's default cut (the input of the final
            classification layer, or the whole model if it is headless) and the output of
            every pooling layer before it.
        method: `"logme"` or `"hscore"`. Defaults to `"logme"`.
        pooling: None, `"avg"` or `"max"`: global pooling over the spatial axes of
            activations with more than 2 dimensions, instead of flattening them. Defaults to
            `None`.
        batch_size: int. Batch size of the forward pass. Defaults to `256`.

    Returns:
        A `TransferabilityTable` with one row per model and cut (cuts in layer order).

    Raises:
        TypeError: If `model` is not a model, mapping or list of models, or a cut has an
            unsupported type.
        ValueError: If a model is not built or has no layer graph, a cut is unknown, out of
            range or at the output layer, `method` or `pooling` is unknown, `data` is not a
            pair of arrays of one length, or the labels hold fewer than two classes.

    Example:
    ```python
    import keras
    import numpy as np
    from transferkit import transferability

    rng = np.random.default_rng(0)
    x = rng.random((128, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 128)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(16, activation="relu", name="dense"),
        keras.layers.Dense(3, activation="softmax", name="classifier"),
    ])
    table = transferability(model, (x, y))
    assert [row.cut for row in table.rows] == ["pool", "dense"]
    assert table.rows[0].feature_dim == 36 and table.best() in table.rows
    ```
    """
    score = METHODS[check_choice(method, "method", tuple(METHODS))]
    if pooling is not None:
        check_choice(pooling, "pooling", POOLINGS)
    batch_size = check_positive_int(batch_size, "batch_size")
    named = _named_models(model)
    x, labels = _target_data(data)
    plans = [(name, m, _cut_indices(m, cuts)) for name, m in named]  # all checked first
    rows: list[TransferabilityRow] = []
    for name, m, ks in plans:  # one forward pass for every cut of a model, then a score per cut
        extractor, leaves = cut_outputs(m, ks, "transferability"), leaf_layers(m)
        with Timer() as forward:
            features = _features(extractor, x, len(labels), batch_size, pooling)
        for k, f in zip(ks, features, strict=True):
            with Timer() as timer:
                value = score(f, labels)
            dim, path, seconds = int(f.shape[1]), leaves[k - 1].path, timer.seconds
            rows.append(TransferabilityRow(name, path, k, dim, value, seconds, forward.seconds))
    return TransferabilityTable(method, pooling, len(labels), len(np.unique(labels)), tuple(rows))


def _named_models(model: Any) -> list[tuple[str, Model]]:
    """`(name, model)` for one model, a mapping or a list, checked: built, names unique."""
    if isinstance(model, keras.Model):
        items = [(str(model.name), model)]
    elif isinstance(model, Mapping):
        items = [(str(k), v) for k, v in model.items()]
    elif isinstance(model, Sequence) and not isinstance(model, str):
        items = [(str(getattr(m, "name", i)), m) for i, m in enumerate(model)]
    else:
        raise TypeError(
            "`model` must be a `keras.Model`, a mapping `{name: model}` or a list of models. "
            f"Received: model={model!r} of type {type(model).__name__}"
        )
    if not items:
        raise ValueError(f"`model` must hold at least one model. Received: model={model!r}")
    names = [name for name, _ in items]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(
            f"Two models are named {twice[0]!r}, so their rows could not be told apart. Pass "
            "a mapping `{name: model}` with distinct names. Received: models named "
            f"{names}"
        )
    for name, m in items:
        ensure_built(m, f"model[{name!r}]")
    return items


def _target_data(data: Any) -> tuple[Any, np.ndarray[Any, Any]]:
    """`(x, labels)`: the inputs and integer labels, checked before any forward pass."""
    x, y = unpack_pair(data, "data")
    n = sample_count(x, finite=True)
    labels, _ = to_labels(y, "y")
    check_lengths("x", n, "y", len(labels))
    if len(np.unique(labels)) < 2:
        raise ValueError(
            "`y` must hold at least two classes: transferability scores how well features "
            f"separate classes. Received: only class {int(labels[0])}"
        )
    return x, labels


def _cut_indices(model: Model, cuts: Any) -> list[int]:
    """The resolved cuts of `model` (leaf layers kept), distinct and in layer order."""
    if cuts is None:
        base = resolve_cut(model, None, "transferability")
        pools = [
            leaf.index + 1
            for leaf in leaf_layers(model)[:base]
            if isinstance(leaf.layer, _POOLING_LAYERS)
        ]
        return sorted({*pools, base})
    items = list(cuts) if isinstance(cuts, Sequence) and not isinstance(cuts, str) else [cuts]
    if not items:
        raise ValueError(
            "`cuts` must hold at least one layer (a name, an index or a layer), or be None "
            f"for the default cuts. Received: cuts={cuts!r}"
        )
    return sorted({resolve_cut(model, cut, "transferability") for cut in items})


def _features(
    extractor: Model, x: Any, n: int, batch_size: int, pooling: str | None
) -> list[np.ndarray[Any, Any]]:
    """Every output of `extractor` on `x`, batch by batch, flattened (or pooled), float32."""
    out: list[np.ndarray[Any, Any]] = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        batch = keras.tree.map_structure(operator.itemgetter(slice(start, stop)), x)
        values = extractor.predict_on_batch(batch)
        outputs = values if isinstance(values, list | tuple) else [values]
        arrays = [_flat(v, pooling) for v in outputs]
        if not out:
            out = [np.empty((n, a.shape[1]), dtype=np.float32) for a in arrays]
        for features, a in zip(out, arrays, strict=True):
            features[start:stop] = a
    return out


def _flat(value: Any, pooling: str | None) -> np.ndarray[Any, Any]:
    """One batch of activations as `(batch, features)`: pooled over the spatial axes, or
    flattened."""
    a = np.asarray(keras.ops.convert_to_numpy(value))
    if pooling is not None and a.ndim > 2:
        first = keras.config.image_data_format() == "channels_first"
        axes = tuple(range(2, a.ndim)) if first else tuple(range(1, a.ndim - 1))
        a = a.mean(axis=axes) if pooling == "avg" else a.max(axis=axes)
    return a.reshape(len(a), -1)
