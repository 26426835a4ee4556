"""Multi-phase recipes and the from-scratch control: compositions of `Phase`s.

Each recipe is a small immutable value: `prepare` makes the model to train, `phases` says how
it trains. `fine_tune` runs the phases back to back on one model (fastai's `fine_tune` and
Lightning's `BackboneFinetuning` are the models: freeze, fit, unfreeze, fit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import keras

from .._validate import check_list
from ..freezing._freeze import unfreeze
from ..freezing._layers import Boundary
from ..types import Model
from ._blocks import probe_cut
from ._blocks import stages as block_stages
from ._builtin import FullFineTune
from ._lora import LoRA
from ._phase import Phase
from ._rates import RateOptions
from ._strategy import BaseStrategy, fmt_boundary


@dataclass(frozen=True, kw_only=True)
class Scratch(BaseStrategy):
    """The control: the same architecture with every weight re-initialised, all training.

    Every weight (BatchNormalization statistics included) is drawn afresh by the layers' own
    initializers, reproducibly from the run's seed. A transfer strategy that does no better
    than this has not transferred anything useful (negative transfer when it does worse).

    Args:
        epochs, optimizer, learning_rate, label, regularizer: As in `FullFineTune`.

    Example:
    ```python
    from transferkit import Scratch, resolve_strategy

    assert resolve_strategy("scratch") == Scratch()
    ```
    """

    def _describe(self) -> str:
        return "scratch"

    def prepare(self, model: Model) -> Model:
        """A re-initialised clone of `model` (same layers, fresh weights), all trainable."""
        fresh = keras.models.clone_model(model)
        if not fresh.built:
            fresh.build(model.input_shape)
        unfreeze(fresh)
        return fresh


@dataclass(frozen=True, kw_only=True)
class LinearProbeThenFineTune(RateOptions, BaseStrategy):
    """LP-FT: train the head on the frozen body, then fine-tune everything more gently.

    Phase 1 (`"probe"`) trains only the layers after `cut` (on cached activations where
    possible) for `probe_epochs`; phase 2 (`"fine_tune"`) trains every layer for the rest of
    the run's epochs at `lr_scale` times the base learning rate. Kumar et al. (ICLR 2022) show
    that starting fine-tuning from a trained head distorts the pretrained features less;
    fastai's `Learner.fine_tune` uses one frozen epoch and halves the rate to unfreeze, which
    are the defaults here.

    Args:
        probe_epochs: int. Epochs of the probe phase, out of the run's epochs. Defaults to `1`.
        cut: None, int, str or Layer. The last frozen leaf layer in the probe. Defaults to
            `None`: everything before the final classification layer.
        lr_scale: float. The fine-tuning phase's learning rate relative to the base rate.
            Defaults to `0.5`.
        train_bn: bool. Keep frozen BatchNormalization trainable in the probe. Defaults to
            `False`.
        lr_mult, layer_decay, blocks: Per-layer rates of the fine-tuning phase, as in
            `FullFineTune`. Defaults to `None`.
        epochs, optimizer, learning_rate, label, regularizer: As in `FullFineTune` (`epochs`
            counts both phases).

    Example:
    ```python
    import keras
    from transferkit import LinearProbeThenFineTune

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    probe, tune = LinearProbeThenFineTune(probe_epochs=2).phases(model, epochs=5)
    assert (probe.epochs, tune.epochs, tune.lr_scale) == (2, 3, 0.5)
    ```
    """

    search_multipliers: ClassVar[tuple[float, ...]] = (0.3, 1.0, 3.0, 10.0)  # a probe first

    probe_epochs: int = 1
    cut: Boundary | None = None
    lr_scale: float = 0.5
    train_bn: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        Phase(epochs=self.probe_epochs, lr_scale=self.lr_scale)  # validates both

    def _describe(self) -> str:
        cut = "" if self.cut is None else f", cut={fmt_boundary(self.cut)}"
        return f"lp_ft(probe_epochs={self.probe_epochs}{cut})"

    def validate(self, model: Model) -> None:
        """Resolve `cut` on `model`, raising if it is invalid."""
        probe_cut(model, self.cut)

    def prepare(self, model: Model) -> Model:
        """`model` itself: the phases set its flags."""
        return model

    def phases(self, model: Model, epochs: int) -> tuple[Phase, ...]:
        """The probe phase and the fine-tuning phase, `epochs` in all."""
        if epochs <= self.probe_epochs:
            raise ValueError(
                f"`{self.name}` needs more epochs than its {self.probe_epochs} probe epoch(s), "
                f"to leave at least one for fine-tuning. Received: epochs={epochs}"
            )
        cut = probe_cut(model, self.cut)
        return (
            Phase(freeze_upto=cut, epochs=self.probe_epochs, train_bn=self.train_bn, name="probe"),
            Phase(
                freeze_upto=0,
                epochs=epochs - self.probe_epochs,
                lr_scale=self.lr_scale,
                name="fine_tune",
                **self._rates(),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class GradualUnfreeze(RateOptions, BaseStrategy):
    """Start with the head; unfreeze one more block from the top every `every` epochs.

    Blocks are the model's natural stages: the leaf layers after each pooling layer start a
    new block, and the head (the layers after `cut`) is the first block to train. Name your
    own block starts with `boundaries` (e.g. `["block_13_expand", "block_6_expand"]` for a
    MobileNetV2). The last phase trains everything for the epochs left (ULMFiT; Lightning's
    `BackboneFinetuning`).

    Args:
        every: int. Epochs per phase before the next block unfreezes. Defaults to `1`.
        boundaries: Sequence of int, str or Layer, or None. The last frozen leaf layer of each
            phase after the first, any order; `None` finds the stages from pooling layers.
            Defaults to `None`.
        cut: None, int, str or Layer. The last frozen layer of the first phase (the head
            trains). Defaults to `None`: everything before the classification layer.
        train_bn: bool. Keep frozen BatchNormalization trainable. Defaults to `False`.
        lr_mult, layer_decay: float or None. Per-layer rates of every phase after the first
            (where more than the head trains); the blocks are the phases' (pass
            `boundaries`, not `blocks`). Defaults to `None`.
        epochs, optimizer, learning_rate, label, regularizer: As in `FullFineTune` (`epochs`
            counts every phase).

    Example:
    ```python
    import keras
    from transferkit import GradualUnfreeze

    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(3),
    ])
    phases = GradualUnfreeze().phases(model, epochs=4)
    assert [p.freeze_upto for p in phases] == [3, 2, 0]
    assert [p.epochs for p in phases] == [1, 1, 2]
    ```
    """

    every: int = 1
    boundaries: Sequence[Boundary] | None = None
    cut: Boundary | None = None
    train_bn: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        Phase(epochs=self.every)  # validates `every` as a number of epochs
        if self.blocks is not None:
            raise ValueError(
                "`GradualUnfreeze`'s blocks are its phases: pass `boundaries` instead of "
                f"`blocks`. Received: blocks={self.blocks!r}"
            )
        allowed = "a list of layer names, indices or layers"
        check_list(self.boundaries, "boundaries", allowed, empty=True)

    def _describe(self) -> str:
        parts = [f"every={self.every}"]
        if self.boundaries is not None:
            parts.append(f"boundaries=[{', '.join(fmt_boundary(b) for b in self.boundaries)}]")
        return f"gradual({', '.join(parts)})"

    def stages(self, model: Model) -> list[int]:
        """Frozen leaf-layer counts of the phases, from the head down to 0 (all train)."""
        return block_stages(model, self.cut, self.boundaries)

    def validate(self, model: Model) -> None:
        """Resolve the stages on `model`, raising if a boundary is invalid."""
        self.stages(model)

    def prepare(self, model: Model) -> Model:
        """`model` itself: the phases set its flags."""
        return model

    def phases(self, model: Model, epochs: int) -> tuple[Phase, ...]:
        """One phase per stage, `every` epochs each, the last one taking the rest."""
        stages = self.stages(model)
        if epochs < (needed := self.every * (len(stages) - 1) + 1):
            raise ValueError(
                f"`{self.name}` has {len(stages)} phases of {self.every} epoch(s) and needs at "
                f"least {needed} epochs. Received: epochs={epochs}. Raise `epochs`, lower "
                "`every`, or pass fewer `boundaries`."
            )
        last = epochs - self.every * (len(stages) - 1)
        rates = {**self._rates(), "blocks": tuple(stages)}
        return tuple(
            Phase(
                freeze_upto=k,
                epochs=self.every if i < len(stages) - 1 else last,
                train_bn=self.train_bn,
                name=f"unfreeze{i}" if i else "head",
                **(rates if i else {}),
            )
            for i, k in enumerate(stages)
        )


def discriminative() -> LinearProbeThenFineTune:
    """fastai's `Learner.fine_tune`: one head epoch, then all at half rate, `lr_mult=100`."""
    return LinearProbeThenFineTune(lr_mult=100.0, label="discriminative")


def layer_decay() -> FullFineTune:
    """Full fine-tuning with layer-wise rate decay 0.75 (BEiT, MAE)."""
    return FullFineTune(layer_decay=0.75, label="layer_decay")


RECIPES: dict[str, Any] = {
    "scratch": Scratch,
    "lp_ft": LinearProbeThenFineTune,
    "gradual": GradualUnfreeze,
    "discriminative": discriminative,
    "layer_decay": layer_decay,
    "lora": LoRA,
}
"""Short names of the recipes, for `resolve_strategy`."""
