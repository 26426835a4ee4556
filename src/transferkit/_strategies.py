"""Strategies: small immutable values that turn a copy of a pretrained model into one to train."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import keras

from ._data import check_learning_rate, output_activation
from ._freeze import freeze, unfreeze
from ._heads import default_cut, replace_head
from ._l2sp import L2SP, check_regularizer
from ._layers import Boundary, leaf_layers, resolve_boundary
from ._rates import RateOptions, check_rates, with_options
from ._runlog import describe_fields as _describe_fields
from ._validate import check_epochs, is_real
from .types import Model


@runtime_checkable
class Strategy(Protocol):
    """What `fine_tune` and `compare_strategies` need from a strategy.

    Attributes:
        name: A short, unique label for tables and records (e.g. `"partial(upto=4)"`).
        epochs, optimizer, learning_rate: Settings, or `None` for the caller's.
    """

    @property
    def name(self) -> str: ...

    @property
    def epochs(self) -> int | None: ...

    @property
    def optimizer(self) -> str | Any | None: ...

    @property
    def learning_rate(self) -> float | None: ...

    def validate(self, model: Model) -> None:
        """Raise `ValueError` if this strategy cannot apply to `model` (before training)."""

    def prepare(self, model: Model) -> Model:
        """Return the model to train, made from `model` (a copy this strategy may mutate).

        Optional hooks: `phases(model, epochs) -> Sequence[Phase]`, the stages run back to back
        (default: one phase with the flags `prepare` set), and `finish(model) -> Model`, whose
        result is returned after the last phase (`LoRA` merges its adapters there).
        """

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (used to fingerprint comparisons)."""


@dataclass(frozen=True, kw_only=True)
class Phase:
    """One stage of a strategy: which leaf layers train, for how long and how fast.

    `fine_tune` runs a strategy's phases back to back on one model, each frozen up to
    `freeze_upto`, compiled with a fresh optimizer and trained for `epochs`.

    Args:
        freeze_upto: None, int, str or Layer. As `freeze(model, upto=...)`; `0` freezes
            nothing, `None` keeps the flags `prepare` set. Defaults to `None`.
        epochs: int or None. `None` takes all the run's epochs. Defaults to `None`.
        optimizer: str, optimizer or None. Defaults to `None` (the strategy's or the caller's).
        learning_rate: float, schedule or None. Defaults to `None` (the run's base rate).
        lr_scale: float. Multiplies the base rate when `learning_rate` is `None`. Defaults to
            `1.0`.
        train_bn: bool. Keep frozen BatchNormalization trainable. Defaults to `False`.
        name: str. The phase's name in histories and records. Defaults to `""` (`"phase<i>"`).
        lr_mult, layer_decay: float or None. Per-layer rates by block, the head at the full
            rate: fastai's `slice(lr / lr_mult, lr)` over the blocks that train, or BEiT's
            `lr * layer_decay ** k` for the block `k` below the head (0 freezes by rate).
            Exclusive; an error where only the head trains. Defaults to `None`.
        blocks: Sequence of int, str or Layer, or None. Where blocks start. Defaults to
            `None` (`GradualUnfreeze`'s: after each pooling layer, and the head).

    Example:
    ```python
    from transferkit import Phase

    probe = Phase(freeze_upto=-1, epochs=1, name="probe")
    assert probe.to_dict()["freeze_upto"] == -1
    ```
    """

    freeze_upto: Boundary | None = None
    epochs: int | None = None
    optimizer: str | Any | None = None
    learning_rate: float | Any | None = None
    lr_scale: float = 1.0
    train_bn: bool = False
    name: str = ""
    lr_mult: float | None = None
    layer_decay: float | None = None
    blocks: Sequence[Boundary] | None = None

    def __post_init__(self) -> None:
        check_epochs(self.epochs)
        check_learning_rate(self.learning_rate)
        check_rates(self.lr_mult, self.layer_decay)
        if not is_real(self.lr_scale) or not 0 < self.lr_scale < math.inf:
            raise ValueError(
                f"`lr_scale` must be a positive number. Received: lr_scale={self.lr_scale!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (used to fingerprint comparisons)."""
        return _describe_fields(self)


@dataclass(frozen=True, kw_only=True)
class BaseStrategy:
    """The shared fields and defaults of the built-in strategies."""

    epochs: int | None = None
    optimizer: str | Any | None = field(default=None, compare=False)
    learning_rate: float | None = None
    label: str | None = None
    regularizer: L2SP | None = None

    def __post_init__(self) -> None:
        check_epochs(self.epochs)
        check_learning_rate(self.learning_rate)
        check_regularizer(self.regularizer)
        check_rates(getattr(self, "lr_mult", None), getattr(self, "layer_decay", None))

    def _describe(self) -> str:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """`label`, or the strategy and its options."""
        return self.label or with_options(self._describe(), self)

    def validate(self, model: Model) -> None:
        """Raise if the strategy cannot apply to `model`."""
        leaf_layers(model)

    def phases(self, model: Model, epochs: int) -> tuple[Phase, ...]:
        """One phase of `epochs` epochs, with the flags `prepare` set."""
        return (Phase(epochs=epochs),)

    def finish(self, model: Model) -> Model:
        """The model to return after the last phase: `model` itself."""
        return model

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (used to fingerprint comparisons)."""
        return {**_describe_fields(self), "type": type(self).__name__, "name": self.name}


def fmt_boundary(value: Boundary | None) -> str:
    """A boundary for a strategy's name: a layer by its name."""
    return repr(value.name if isinstance(value, keras.layers.Layer) else value)


# The old private names, still imported by `_recipes` and `_lora`.


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
    keras.layers.GlobalAveragePooling1D
    | keras.layers.GlobalAveragePooling2D
    | keras.layers.GlobalAveragePooling3D
    | keras.layers.GlobalMaxPooling1D
    | keras.layers.GlobalMaxPooling2D
    | keras.layers.GlobalMaxPooling3D
)


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
        k = self._cut(model)
        if k >= len(leaf_layers(model)):
            raise ValueError(
                f"`cut` is at the output layer, so nothing would train. Received: cut={self.cut!r}"
            )

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


STRATEGY_NAMES = ("full", "partial", "feature_extractor")


def resolve_strategy(strategy: Strategy | str) -> Strategy:
    """Turn a strategy or its short name into a `Strategy`.

    Args:
        strategy: A `Strategy` or a short name: `"full"`, `"partial"` (or `"partial:<upto>"`),
            `"feature_extractor"` (or `"feature_extractor:<cut>"`), `"scratch"`, `"lp_ft"`,
            `"gradual"`, `"discriminative"`, `"layer_decay"` or `"lora"`.

    Returns:
        A `Strategy`.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
        TypeError: For anything that is neither a string nor a `Strategy`.

    Example:
    ```python
    from transferkit import PartialFreeze, resolve_strategy

    assert resolve_strategy("partial:4") == PartialFreeze(upto=4)
    ```
    """
    if isinstance(strategy, str):
        base, _, arg = strategy.partition(":")
        boundary: Boundary | None = None
        if arg:
            boundary = int(arg) if arg.lstrip("-").isdigit() else arg
        if base == "full" and not arg:
            return FullFineTune()
        if base == "partial":
            return PartialFreeze(upto=boundary)
        if base in ("feature_extractor", "feature-extractor"):
            return FeatureExtractor(cut=boundary)
        from ._recipes import RECIPES  # the recipes build on this module

        if base in RECIPES and not arg:
            return RECIPES[base]()  # type: ignore[no-any-return]
        import difflib

        known = (*STRATEGY_NAMES, *RECIPES)
        close = difflib.get_close_matches(base, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown strategy {strategy!r}. Known strategy names: "
            f"{', '.join(repr(n) for n in known)} (with an optional ':<boundary>' for "
            f"'partial' and 'feature_extractor'), or pass a `Strategy` object.{hint}"
        )
    if isinstance(strategy, Strategy) and not isinstance(strategy, type):
        return strategy
    if isinstance(strategy, type):  # the class itself passes the protocol check: say so
        raise TypeError(
            f"`strategy` must be a `Strategy` object, not a class: pass "
            f"`{strategy.__name__}()` instead of `{strategy.__name__}`."
        )
    raise TypeError(
        "`strategy` must be a strategy name (str) or a `Strategy` object such as "
        f"`FullFineTune()`. Received: {strategy!r} of type {type(strategy).__name__}."
    )
