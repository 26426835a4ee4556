"""Blocks of a model: the stages between its pooling layers, from the head down."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from ..freezing._heads import default_cut
from ..freezing._layers import Boundary, leaf_layers, resolve_boundary
from ..types import Model

_POOLING = (
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
)  # fmt: skip


def probe_cut(model: Model, cut: Boundary | None) -> int:
    n = len(leaf_layers(model))
    k = default_cut(model) if cut is None else resolve_boundary(model, cut, argument="cut")
    if k >= n:
        raise ValueError(
            f"`cut` is at the output layer, so nothing would train. Received: cut={cut!r}"
        )
    return k


def stages(
    model: Model, cut: Boundary | None = None, boundaries: Sequence[Boundary] | None = None
) -> list[int]:
    """Frozen leaf-layer counts from the head down to 0: after each pooling layer by default.

    `cut` is the last frozen layer of the head-only stage (default: everything before the
    classification layer); `boundaries` name the stages instead of the pooling layers.
    """
    leaves, top = leaf_layers(model), probe_cut(model, cut)
    if boundaries is None:
        inner = [leaf.index + 1 for leaf in leaves if isinstance(leaf.layer, _POOLING)]
    else:
        inner = [
            resolve_boundary(model, b, argument="boundaries", leaves=leaves) for b in boundaries
        ]
    return sorted({top, 0, *(k for k in inner if 0 < k < top)}, reverse=True)
