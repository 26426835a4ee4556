"""`TrainSettings`: what `fine_tune` and `compare_strategies` share, checked once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import keras

from .._validate import check_learning_rate, check_positive_int, is_int, is_real
from ..strategies._strategy import Strategy
from ..types import Model
from ._cache import FeatureCache
from ._callbacks import EarlyStoppingSpec, check_early_stopping
from ._feed import distributed

Auto = Literal["auto"]
PRECISIONS = (None, "float32", "mixed_bfloat16", "mixed_float16")


def default_steps_per_execution() -> int:
    """`steps_per_execution` used by `"auto"`, chosen per backend from measurements.

    On this project's reference CPU (2 cores) TensorFlow ran full fine-tuning of the lab CNN
    about 20% faster per epoch with 16 steps per execution; JAX also gains; the PyTorch
    trainer runs one step at a time, and so does TensorFlow inside a `tf.distribute` scope.
    """
    if keras.backend.backend() == "torch" or distributed():
        return 1  # Keras's multi-step loop fails under MirroredStrategy (placeholder error)
    return 16


def default_jit_compile() -> bool:
    """`jit_compile` used by `"auto"`: XLA for JAX; off on TensorFlow CPU (measured slower)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # only reached on the TensorFlow backend

        return bool(tf.config.list_physical_devices("GPU"))
    return bool(backend == "jax")


def make_optimizer(optimizer: str | Any | None, learning_rate: float | None) -> Any:
    """A fresh optimizer: from a name, or a copy of an optimizer instance's configuration
    (`None`: Adam)."""
    optimizer = "adam" if optimizer is None else optimizer
    if isinstance(optimizer, str):
        config: dict[str, Any] = {} if learning_rate is None else {"learning_rate": learning_rate}
        try:
            return keras.optimizers.get({"class_name": optimizer, "config": config})
        except ValueError as err:
            raise ValueError(
                f"Unknown `optimizer` {optimizer!r}: use a Keras optimizer name such as 'adam', "
                f"'sgd' or 'adamw', or an optimizer instance. ({err})"
            ) from err
    if isinstance(optimizer, keras.optimizers.Optimizer):
        fresh = type(optimizer).from_config(optimizer.get_config())
        if learning_rate is not None:
            fresh.learning_rate = learning_rate
        return fresh
    raise TypeError(
        "`optimizer` must be an optimizer name or a `keras.optimizers.Optimizer`. "
        f"Received: {optimizer!r}"
    )


def _check_steps(steps: Any) -> None:
    if steps != "auto" and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(
            "`steps_per_execution` must be a positive int or 'auto'. "
            f"Received: steps_per_execution={steps!r}"
        )


def _check_precision(precision: Any) -> None:
    if precision not in PRECISIONS:
        raise ValueError(
            "`precision` must be None, 'float32', 'mixed_bfloat16' or 'mixed_float16'. "
            f"Received: precision={precision!r}"
        )


def _check_class_weight(class_weight: Any) -> None:
    if class_weight is None:
        return
    if not isinstance(class_weight, Mapping) or not class_weight:
        raise ValueError(
            "`class_weight` must be None or a non-empty dict from class id to weight, e.g. "
            f"{{0: 1.0, 1: 5.0}}. Received: class_weight={class_weight!r}"
        )
    for key, value in class_weight.items():
        if not is_int(key) or key < 0:
            raise ValueError(
                f"`class_weight` keys must be class ids (ints >= 0). Received the key {key!r}."
            )
        if not is_real(value) or not math.isfinite(float(value)) or value < 0:
            raise ValueError(
                f"`class_weight` values must be finite numbers >= 0. Received {key!r}: {value!r}."
            )


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """The run settings `fine_tune` and `compare_strategies` share, as their users gave them.

    Constructing one checks every setting that needs no model or data, so a mistake fails
    before anything trains; `for_strategy` applies a strategy's own epochs, optimizer and
    learning rate, and `compile_kwargs` gives what every phase compiles with.
    """

    epochs: int = 10
    batch_size: int = 32
    optimizer: str | Any | None = None
    learning_rate: float | None = None
    loss: Any = None
    callbacks: Sequence[Any] = ()
    metrics: Sequence[Any] = ("accuracy",)
    verbose: int | Auto = "auto"
    cache: bool | FeatureCache = True
    steps_per_execution: int | Auto = "auto"
    jit_compile: bool | Auto = "auto"
    precision: str | None = None
    early_stopping: EarlyStoppingSpec = None
    class_weight: Mapping[int, float] | None = None

    def __post_init__(self) -> None:
        check_learning_rate(self.learning_rate)
        # NumPy integers are accepted and stored as plain ints.
        object.__setattr__(self, "epochs", check_positive_int(self.epochs, "epochs"))
        object.__setattr__(self, "batch_size", check_positive_int(self.batch_size, "batch_size"))
        _check_steps(self.steps_per_execution)
        _check_precision(self.precision)
        make_optimizer(self.optimizer, self.learning_rate)  # an unknown optimizer fails now
        _check_class_weight(self.class_weight)

    @classmethod
    def of(cls, arguments: Mapping[str, Any], **overrides: Any) -> TrainSettings:
        """The settings among an entry point's `arguments` (its `locals()`), with `overrides`."""
        given = {f.name: arguments[f.name] for f in fields(cls) if f.name in arguments}
        return cls(**{**given, **overrides})

    def check_validation(self, validation: Any) -> None:
        """Raise if early stopping needs validation data that `validation` does not give."""
        check_early_stopping(
            self.early_stopping, has_validation=validation is not None, metrics=self.metrics
        )

    def for_model(self, model: Model) -> TrainSettings:
        """With no `optimizer` given: a fresh copy of `model`'s compiled one, else Adam."""
        if self.optimizer is not None:
            return self
        compiled = getattr(model, "optimizer", None)
        return replace(self, optimizer=compiled if compiled is not None else "adam")

    def for_strategy(self, strategy: Strategy) -> TrainSettings:
        """These settings with the strategy's own epochs, optimizer and learning rate."""
        return replace(
            self,
            epochs=strategy.epochs or self.epochs,
            optimizer=strategy.optimizer or self.optimizer,
            learning_rate=strategy.learning_rate or self.learning_rate,
        )

    @property
    def auto_steps(self) -> bool:
        """Whether `steps_per_execution` is left to transferkit."""
        return self.steps_per_execution == "auto"

    def compile_kwargs(self, loss: Any) -> dict[str, Any]:
        """What every phase compiles with, besides its optimizer."""
        steps = self.steps_per_execution
        return {
            "loss": loss,
            "metrics": list(self.metrics),
            "steps_per_execution": default_steps_per_execution() if steps == "auto" else steps,
            "jit_compile": (
                default_jit_compile() if self.jit_compile == "auto" else self.jit_compile
            ),
        }
