"""`trainable_summary`: every leaf layer with its path, type, parameters and trainable flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _serial
from ..timing import count_params
from ..types import Model
from ._layers import leaf_layers


@dataclass(frozen=True)
class LayerInfo:
    """One row of a `TrainableSummary`: a leaf layer's `index`, `path`, `type`, `params` and
    `trainable` flag."""

    index: int
    path: str
    type: str
    params: int
    trainable: bool


@dataclass(frozen=True)
class TrainableSummary:
    """A `model_name` and one `LayerInfo` per leaf layer (`layers`); prints as a table.

    Returned by `trainable_summary`, whose example shows it.
    """

    model_name: str
    layers: tuple[LayerInfo, ...]

    @property
    def trainable_params(self) -> int:
        """Parameters in trainable leaf layers."""
        return sum(row.params for row in self.layers if row.trainable)

    @property
    def frozen_params(self) -> int:
        """Parameters in frozen leaf layers."""
        return sum(row.params for row in self.layers if not row.trainable)

    def to_list(self) -> list[dict[str, Any]]:
        """The rows as a list of plain dicts (ready for JSON or `pandas.DataFrame`)."""
        return [_serial.to_dict(row) for row in self.layers]

    def __len__(self) -> int:
        return len(self.layers)

    def __str__(self) -> str:
        headers = ("#", "path", "type", "params", "trainable")
        rows = [
            (str(r.index), r.path, r.type, f"{r.params:,}", "yes" if r.trainable else "no")
            for r in self.layers
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

        def fmt(cells: tuple[str, ...]) -> str:
            return "  ".join(
                c.rjust(w) if i in (0, 3) else c.ljust(w)  # index and params to the right
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        lines = [f"Model {self.model_name!r}", fmt(headers), fmt(tuple("-" * w for w in widths))]
        lines += [fmt(row) for row in rows]
        lines.append(
            f"trainable params: {self.trainable_params:,}  frozen params: {self.frozen_params:,}"
        )
        return "\n".join(lines)


def trainable_summary(model: Model) -> TrainableSummary:
    """Summarise every leaf layer of `model` (path, type, parameters, trainable); no mutation.

    Args:
        model: `keras.Model`. A built model.

    Returns:
        A `TrainableSummary`; `print` it for a table, `.to_list()` for dicts.

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If the model is not built.

    Example:

    ```python
    import keras
    from transferkit import freeze, trainable_summary

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    freeze(model, upto=1)
    summary = trainable_summary(model)
    print(summary)
    assert [row["trainable"] for row in summary.to_list()] == [False, True]
    assert (summary.frozen_params, summary.trainable_params) == (15, 8)
    ```
    """
    rows = tuple(
        LayerInfo(
            index=leaf.index,
            path=leaf.path,
            type=type(leaf.layer).__name__,
            params=count_params(leaf.layer)[1],
            trainable=bool(leaf.layer.trainable),
        )
        for leaf in leaf_layers(model)
    )
    return TrainableSummary(model_name=str(model.name), layers=rows)
