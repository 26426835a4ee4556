"""`Strategy`: the protocol every strategy meets, and the shared base of the built-in ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import keras

from .._serial import describe_fields
from .._validate import check_epochs, check_learning_rate
from ..freezing._layers import Boundary, leaf_layers
from ..types import Model
from ._l2sp import L2SP, check_regularizer
from ._phase import Phase, check_rates
from ._rates import with_options


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
class BaseStrategy:
    """The shared fields and defaults of the built-in strategies.

    `search_multipliers` are the rates `compare_strategies(learning_rates="auto")` tries, as
    multiples of the optimizer's rate (Adam's 1e-3: 3e-4, 1e-3, 3e-3 for strategies that train
    the body); strategies that train only a head or a few parameters search higher.
    """

    search_multipliers: ClassVar[tuple[float, ...]] = (0.3, 1.0, 3.0)

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
        return {**describe_fields(self), "type": type(self).__name__, "name": self.name}


def fmt_boundary(value: Boundary | None) -> str:
    """A boundary for a strategy's name: a layer by its name."""
    return repr(value.name if isinstance(value, keras.layers.Layer) else value)
