"""The lab's three strategies: `FullFineTune`, `PartialFreeze` and `FeatureExtractor`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import keras

from ..freezing._freeze import freeze, unfreeze
from ..freezing._heads import default_cut, replace_head
from ..freezing._layers import Boundary, leaf_layers, output_activation, resolve_boundary
from ..types import Model
from ._blocks import probe_cut
from ._rates import RateOptions
from ._strategy import BaseStrategy, fmt_boundary


@dataclass(frozen=True, kw_only=True)
class FullFineTune(RateOptions, BaseStrategy):
    """Every layer trains, starting from the pretrained weights (lab method 1).

    Args:
        epochs, optimizer, learning_rate: int, str or optimizer, float, or None for the
            caller's. Defaults to `None`.
        label: str or None. Name in tables. Defaults to `None` (`"full"`).
        lr_mult, layer_decay, blocks: Per-layer rates, as in `Phase`. Defaults to `None`.
        regularizer: `L2SP` or None. Defaults to `None`.

    Example:
    ```python
    from transferkit import FullFineTune

    strategy = FullFineTune(learning_rate=1e-4)
    assert strategy.name == "full"
    ```
    """

    def _describe(self) -> str:
        return "full"

    def prepare(self, model: Model) -> Model:
        """Make every layer of `model` trainable and return it."""
        unfreeze(model)
        return model


@dataclass(frozen=True, kw_only=True)
class PartialFreeze(RateOptions, BaseStrategy):
    """Leaf layers up to a boundary are frozen, the rest train (lab method 2).

    Args:
        upto: None, int, str or Layer, as in `freeze`. Defaults to `None`: every leaf layer
            before the first `Flatten` or global pooling layer, else the first half.
        train_bn: bool. Keep frozen BatchNormalization trainable. Defaults to `False`.
        epochs, optimizer, learning_rate, label, lr_mult, layer_decay, blocks, regularizer:
            As in `FullFineTune`.

    Example:
    ```python
    from transferkit import PartialFreeze

    assert PartialFreeze(upto=4).name == "partial(upto=4)"
    ```
    """

    upto: Boundary | None = None
    train_bn: bool = False

    def _describe(self) -> str:
        return "partial" if self.upto is None else f"partial(upto={fmt_boundary(self.upto)})"

    def boundary(self, model: Model) -> int:
        """How many leading leaf layers of `model` this strategy freezes."""
        leaves = leaf_layers(model)
        if self.upto is not None:
            return resolve_boundary(model, self.upto, leaves=leaves)
        for leaf in leaves:
            if isinstance(leaf.layer, keras.layers.Flatten | _GlobalPooling):
                return leaf.index
        return len(leaves) // 2

    def validate(self, model: Model) -> None:
        """Resolve the boundary on `model`, raising if it is invalid."""
        self.boundary(model)

    def prepare(self, model: Model) -> Model:
        """Freeze `model` up to the boundary and return it."""
        freeze(model, self.boundary(model), train_bn=self.train_bn)
        return model


_GlobalPooling = (
    keras.layers.GlobalAveragePooling1D | keras.layers.GlobalAveragePooling2D
    | keras.layers.GlobalAveragePooling3D | keras.layers.GlobalMaxPooling1D
    | keras.layers.GlobalMaxPooling2D | keras.layers.GlobalMaxPooling3D
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class FeatureExtractor(BaseStrategy):
    """The pretrained body is frozen and only a head trains (lab method 3, done right).

    Args:
        cut: None, int, str or Layer. The last frozen leaf layer. Defaults to `None`: every
            layer before the final classification layer (a linear probe).
        hidden: Sequence of int or None. Sizes of a new head's ReLU layers (`replace_head`),
            or `None` to train the model's own layers after `cut`. Defaults to `None`.
        dropout: float. Dropout in a new head. Defaults to `0.0`.
        epochs, optimizer, learning_rate, label, regularizer: As in `FullFineTune`.

    Example:
    ```python
    from transferkit import FeatureExtractor

    strategy = FeatureExtractor(cut="flatten", epochs=20)
    assert strategy.name == "feature_extractor(cut='flatten')"
    ```
    """

    search_multipliers: ClassVar[tuple[float, ...]] = (1.0, 3.0, 10.0, 30.0)  # head only

    cut: Boundary | None = None
    hidden: Sequence[int] | None = None
    dropout: float = 0.0

    def _describe(self) -> str:
        parts = [] if self.cut is None else [f"cut={fmt_boundary(self.cut)}"]
        if self.hidden is not None:
            parts.append(f"hidden={tuple(self.hidden)}")
        return "feature_extractor" + (f"({', '.join(parts)})" if parts else "")

    def _cut(self, model: Model) -> int:
        if self.cut is None:
            return default_cut(model)
        return resolve_boundary(model, self.cut, argument="cut")

    def validate(self, model: Model) -> None:
        """Resolve `cut` on `model`, raising if it is invalid."""
        probe_cut(model, self.cut)  # raises for a cut at the output layer

    def prepare(self, model: Model) -> Model:
        """Freeze the body (and attach a new head if `hidden` is given); return the model."""
        k = self._cut(model)
        if self.hidden is not None:
            activation = output_activation(model)
            model = replace_head(
                model,
                int(model.output_shape[-1]),
                cut=k,
                hidden=tuple(self.hidden),
                dropout=self.dropout,
                activation=None if activation == "linear" else activation,
            )
        freeze(model, k)
        return model
