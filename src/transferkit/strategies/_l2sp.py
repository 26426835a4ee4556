"""L2-SP (Li et al., ICML 2018): keep transferred weights near their start, new ones small.

Each trainable variable gets a Keras `regularizer` for the run, so every backend's trainer adds
the penalty to the loss for the weights that train; it is removed after training.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from .._validate import check_number
from ..freezing._freeze import RecompileWarning, TrainableState, unfreeze
from ..types import Model


@dataclass(frozen=True, kw_only=True)
class L2SP:
    """The L2-SP penalty, an option of every strategy (`regularizer=L2SP(...)`).

    The loss gains `alpha * sum((w - w0) ** 2)` over the trained weights the strategy kept
    from the pretrained model (`w0`: their values when training starts) and
    `beta * sum(w ** 2)` over the trained weights it created (a new head, all of `Scratch`).
    Sharp edge: strengths follow `keras.regularizers.L2`, with no factor 1/2, so the paper's
    alpha=0.1, beta=0.01 are `alpha=0.05, beta=0.005` here. `fine_tune` logs the penalty as
    `history["l2sp"]` and removes it from the returned model.

    Args:
        alpha: float >= 0. Pull towards the starting weights. Defaults to `0.05`.
        beta: float >= 0. L2 penalty on new weights. Defaults to `0.005`.

    Raises:
        ValueError: For a negative or non-finite strength.

    Example:
    ```python
    from transferkit import FullFineTune, L2SP

    strategy = FullFineTune(regularizer=L2SP(alpha=0.1))
    assert strategy.name == "full(l2sp)" and strategy.regularizer.beta == 0.005
    ```
    """

    alpha: float = 0.05
    beta: float = 0.005

    def __post_init__(self) -> None:
        for arg in ("alpha", "beta"):
            check_number(getattr(self, arg), arg)

    def get_config(self) -> dict[str, float]:
        """The strengths (for run-log fingerprints)."""
        return {"alpha": float(self.alpha), "beta": float(self.beta)}


def check_regularizer(value: Any) -> None:
    """Raise `TypeError` unless `value` is `None` or an `L2SP`."""
    if value is not None and not isinstance(value, L2SP):
        raise TypeError(f"`regularizer` must be None or an `L2SP`. Received: regularizer={value!r}")


class _Term:
    """One variable's penalty: `strength * sum((v - anchor) ** 2)`, plus its old regularizer."""

    def __init__(self, strength: float, anchor: Any, previous: Any) -> None:
        self.strength, self.anchor, self.previous = strength, anchor, previous

    def __call__(self, value: Any) -> Any:
        diff = value if self.anchor is None else keras.ops.subtract(value, self.anchor)
        term = keras.ops.multiply(self.strength, keras.ops.sum(keras.ops.square(diff)))
        return term if self.previous is None else keras.ops.add(term, self.previous(value))


@dataclass
class Penalty:
    """The L2-SP terms attached to one model's variables for a run."""

    model: Model
    terms: list[tuple[Any, _Term, np.ndarray[Any, Any] | None]]

    def value(self) -> float:
        """The penalty over the weights that train now, computed in NumPy."""
        trainable, total = {id(v) for v in self.model.trainable_weights}, 0.0
        for var, term, start in self.terms:
            if id(var) in trainable:
                w = np.asarray(keras.ops.convert_to_numpy(var), dtype=np.float64)
                d = w if start is None else w - start
                total += term.strength * float(np.sum(d * d))
        return total

    def detach(self) -> None:
        """Give every variable back the regularizer it had."""
        for var, term, _ in self.terms:
            var.regularizer = term.previous

    def logger(self) -> keras.callbacks.Callback:
        """A callback writing the penalty into each epoch's logs as `"l2sp"`."""
        return _PenaltyLogger(self.value)


class _PenaltyLogger(keras.callbacks.Callback):  # type: ignore[misc]
    """Writes `measure()` into each epoch's logs as `"l2sp"`."""

    def __init__(self, measure: Callable[[], float]) -> None:
        super().__init__()
        self.measure = measure

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["l2sp"] = self.measure()


def attach_l2sp(model: Model, reg: L2SP, transferred: Iterable[Any]) -> Penalty:
    """Attach `reg` to `model`'s trainable-when-unfrozen float weights; `transferred`: kept.

    Mutates the variables' `regularizer` until `Penalty.detach` (trainable flags are left as
    found). Other variables, and those of a term with strength 0, are left alone.
    """
    kept = {id(v) for v in transferred}
    state = TrainableState.capture(model)
    try:  # every weight that some phase could train (not BatchNormalization statistics)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecompileWarning)
            unfreeze(model)
        trainable = list(model.trainable_weights)
    finally:
        state.restore()
    terms: list[tuple[Any, _Term, np.ndarray[Any, Any] | None]] = []
    for var in trainable:
        if "float" not in str(var.dtype):
            continue
        is_kept = id(var) in kept
        strength = float(reg.alpha if is_kept else reg.beta)
        if strength == 0:
            continue
        start = np.array(keras.ops.convert_to_numpy(var), copy=True) if is_kept else None
        anchor = None if start is None else keras.ops.convert_to_tensor(start)
        term = _Term(strength, anchor, var.regularizer)
        var.regularizer = term
        terms.append((var, term, start))
    return Penalty(model=model, terms=terms)
