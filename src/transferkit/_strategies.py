"""Transfer-learning strategies: small immutable values that prepare a model copy for training.

A strategy has one job: given a fresh copy of the pretrained model (which it owns and may
mutate), return the model to train. Anything that satisfies the `Strategy` protocol works in
`fine_tune` and `compare_strategies`; a new strategy is a new class, never a new branch there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import keras

from ._freeze import freeze, unfreeze
from ._heads import default_cut, replace_head
from ._layers import Boundary, leaf_layers, resolve_boundary
from .types import Model


@runtime_checkable
class Strategy(Protocol):
    """What `fine_tune` and `compare_strategies` need from a strategy.

    Attributes:
        name: A short, unique label used in tables and records (e.g. `"partial(upto=4)"`).
        epochs: Epochs for this strategy, or `None` to use the caller's `epochs`.
        optimizer: Optimizer name or instance, or `None` to use the caller's.
        learning_rate: Learning rate, or `None` for the caller's (or the optimizer default).
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
        """Return the model to train, made from `model` (a copy this strategy may mutate)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (used to fingerprint comparisons)."""


@dataclass(frozen=True, kw_only=True)
class _Base:
    epochs: int | None = None
    optimizer: str | Any | None = field(default=None, compare=False)
    learning_rate: float | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and (
            isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1
        ):
            raise ValueError(f"`epochs` must be a positive int. Received: epochs={self.epochs!r}")
        if self.learning_rate is not None and not float(self.learning_rate) > 0:
            raise ValueError(
                f"`learning_rate` must be positive. Received: learning_rate={self.learning_rate!r}"
            )

    def _describe(self) -> str:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.label or self._describe()

    def validate(self, model: Model) -> None:
        leaf_layers(model)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        opt = d.pop("optimizer")
        d["optimizer"] = opt if opt is None or isinstance(opt, str) else _optimizer_config(opt)
        d["type"] = type(self).__name__
        d["name"] = self.name
        for key, value in list(d.items()):
            if isinstance(value, keras.layers.Layer):
                d[key] = value.name
        return d


def _optimizer_config(optimizer: Any) -> dict[str, Any]:
    config = {k: v for k, v in optimizer.get_config().items() if _jsonable(v)}
    return {"class": type(optimizer).__name__, **config}


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _fmt_boundary(value: Boundary | None) -> str:
    if isinstance(value, keras.layers.Layer):
        return repr(value.name)
    return repr(value)


@dataclass(frozen=True, kw_only=True)
class FullFineTune(_Base):
    """Every layer trains, starting from the pretrained weights (lab method 1).

    Args:
        epochs: int or None. Epochs for this strategy. Defaults to `None` (the caller's).
        optimizer: str, optimizer or None. Defaults to `None` (the caller's).
        learning_rate: float or None. Defaults to `None`.
        label: str or None. Name in tables. Defaults to `"full"`.

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
class PartialFreeze(_Base):
    """Leaf layers up to a boundary are frozen, the rest train (lab method 2).

    Args:
        upto: None, int, str or Layer, as in `freeze`. Defaults to `None`: the convolutional
            body, i.e. every leaf layer before the first `Flatten` or global pooling layer
            (for the lab CNN, its first 4 layers), or the first half of the leaf layers if
            the model has neither.
        train_bn: bool. Keep BatchNormalization in the frozen part trainable. Defaults to
            `False`.
        epochs, optimizer, learning_rate, label: As in `FullFineTune`.

    Example:
    ```python
    from transferkit import PartialFreeze

    assert PartialFreeze(upto=4).name == "partial(upto=4)"
    ```
    """

    upto: Boundary | None = None
    train_bn: bool = False

    def _describe(self) -> str:
        return "partial" if self.upto is None else f"partial(upto={_fmt_boundary(self.upto)})"

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
class FeatureExtractor(_Base):
    """The pretrained body is frozen and only a head trains (lab method 3, done right).

    With `hidden=None` the model's own layers after `cut` form the head and train; with
    `hidden` given, they are replaced by a new head (`replace_head`) of ReLU `Dense` layers of
    those sizes and a new classifier with as many units as the model's output.

    Args:
        cut: None, int, str or Layer. The last frozen leaf layer. Defaults to `None`: every
            layer before the final classification layer (a linear probe).
        hidden: Sequence of int or None. Sizes of a new head's hidden layers, or `None` to
            keep (and train) the model's own layers after `cut`. Defaults to `None`.
        dropout: float. Dropout in a new head. Defaults to `0.0`.
        epochs, optimizer, learning_rate, label: As in `FullFineTune`.

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
        parts = [] if self.cut is None else [f"cut={_fmt_boundary(self.cut)}"]
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
            model = replace_head(
                model,
                int(model.output_shape[-1]),
                cut=k,
                hidden=tuple(self.hidden),
                dropout=self.dropout,
                activation=_output_activation(model),
            )
        freeze(model, k)
        return model

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["hidden"] = None if self.hidden is None else list(self.hidden)
        return d


def _output_activation(model: Model) -> str | None:
    last = leaf_layers(model)[-1].layer
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", None)
    return None if name in (None, "linear") else str(name)


STRATEGY_NAMES = ("full", "partial", "feature_extractor")


def resolve_strategy(strategy: Strategy | str) -> Strategy:
    """Turn a strategy or its short name into a `Strategy`.

    Short names: `"full"`, `"partial"` (or `"partial:<upto>"`, e.g. `"partial:4"` or
    `"partial:block_13_expand"`) and `"feature_extractor"` (or `"feature_extractor:<cut>"`).

    Args:
        strategy: A `Strategy` or a short name.

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
        import difflib

        close = difflib.get_close_matches(base, STRATEGY_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown strategy {strategy!r}. Known strategy names: "
            f"{', '.join(repr(n) for n in STRATEGY_NAMES)} (with an optional ':<boundary>' for "
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
