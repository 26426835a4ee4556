"""Argument checks shared by the public API, so each check and its message exist once."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeGuard

import keras
import numpy as np


def is_int(value: object) -> TypeGuard[int]:
    """Whether `value` is an integer (NumPy integers too), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[float]:
    """Whether `value` is a real number (ints and NumPy scalars too), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(value: Any, arg: str, *, allow_zero: bool = False) -> int:
    """Returns `value` as an `int`, or raises a Keras-style `ValueError` naming `arg`.

    NumPy integers are accepted; bools and floats (even `2.0`) are not.
    """
    if is_int(value) and int(value) >= (0 if allow_zero else 1):
        return int(value)
    kind = "non-negative" if allow_zero else "positive"
    raise ValueError(f"`{arg}` must be a {kind} int. Received: {arg}={value!r}")


def check_number(value: Any, arg: str, *, positive: bool = False, note: str = "") -> None:
    """Raise a Keras-style `ValueError` unless `value` is a finite real >= 0 (> 0 if `positive`)."""
    if is_real(value) and math.isfinite(value) and (value > 0 if positive else value >= 0):
        return
    sign = ">" if positive else ">="
    raise ValueError(f"`{arg}` must be a finite number {sign} 0{note}. Received: {arg}={value!r}")


def check_list(
    value: Any, arg: str, allowed: str, item: Any = None, *, empty: bool = False
) -> None:
    """Raise a Keras-style `ValueError` unless `value` is None or a sequence other than a string,
    non-empty unless `empty`, whose items all pass `item` (a predicate; any item when None).
    `allowed` says what is allowed, e.g. "a non-empty list of layer names"."""
    if value is None:
        return
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not (value or empty)
        or (item is not None and not all(item(v) for v in value))
    ):
        raise ValueError(f"`{arg}` must be {allowed}, or None. Received: {arg}={value!r}")


def check_lengths(a: str, len_a: int, b: str, len_b: int) -> None:
    """Raise a Keras-style `ValueError` unless `a` and `b` have as many samples as each other."""
    if len_a != len_b:
        raise ValueError(
            f"`{a}` and `{b}` must have the same number of samples. "
            f"Received: len({a})={len_a}, len({b})={len_b}"
        )


def check_epochs(epochs: Any) -> None:
    """Raise `ValueError` unless `epochs` is None or a positive int (NumPy ints included)."""
    if epochs is not None:
        check_positive_int(epochs, "epochs")


def as_numpy(a: Any) -> np.ndarray[Any, Any]:
    """NumPy arrays, lists and scalars as-is; backend tensors via `keras.ops.convert_to_numpy`."""
    if isinstance(a, np.ndarray | np.generic | list | tuple | int | float | bool):
        return np.asarray(a)
    return np.asarray(keras.ops.convert_to_numpy(a))


def sample_count(x: Any, *, finite: bool = False) -> int:
    """The number of samples in `x` (an array, or a list/dict of arrays of one length).

    Raises:
        ValueError: If `x` holds no array or no sample, its arrays differ in length, or (with
            `finite=True`) it holds NaN or inf.
    """
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError("`x` must contain at least one input array. Received: an empty structure")
    lengths = {int(np.shape(a)[0]) if np.ndim(a) else 0 for a in leaves}
    if len(lengths) != 1:
        raise ValueError(
            "All arrays in `x` must have the same number of samples. "
            f"Received: lengths {sorted(lengths)}"
        )
    n = lengths.pop()
    if n == 0:
        raise ValueError("`x` must contain at least one sample. Received: 0 samples")
    arrays = [as_numpy(a) for a in leaves] if finite else []
    bad = sum(int(np.sum(~np.isfinite(a))) for a in arrays if np.issubdtype(a.dtype, np.inexact))
    if bad:
        raise ValueError(
            f"`x` must not contain NaN or inf. Received: {bad} non-finite values. "
            "Clean or impute the inputs first (e.g. `np.nan_to_num`)."
        )
    return n


def check_learning_rate(learning_rate: Any) -> None:
    """Refuse a learning rate that is not a finite number > 0 or a schedule (None: default)."""
    if learning_rate is None or isinstance(
        learning_rate, keras.optimizers.schedules.LearningRateSchedule
    ):
        return
    if (
        isinstance(learning_rate, bool | np.bool_)
        or not isinstance(learning_rate, numbers.Real)
        or not math.isfinite(float(learning_rate))
        or learning_rate <= 0
    ):
        raise ValueError(
            "`learning_rate` must be a finite number > 0 (a negative rate climbs the loss), a "
            "`keras.optimizers.schedules.LearningRateSchedule`, or None for the optimizer's "
            f"default. Received: learning_rate={learning_rate!r}"
        )


def did_you_mean(value: Any, choices: Sequence[str]) -> str:
    """`" Did you mean 'x'?"` for the closest of `choices` to `value` (difflib), or `""`."""
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(value: Any, arg: str, allowed: Sequence[str]) -> str:
    """Returns `value` if it is one of `allowed`, or raises a Keras-style `ValueError` listing
    them, with the closest one (difflib) when there is one."""
    if isinstance(value, str) and value in allowed:
        return value
    hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
    raise ValueError(
        f"`{arg}` must be one of {', '.join(repr(a) for a in allowed)}.{hint} "
        f"Received: {arg}={value!r}"
    )


def unpack_pair(data: Any, arg: str) -> tuple[Any, Any]:
    """`(x, y)` from a pair of inputs and labels, or a Keras-style `ValueError` naming `arg`."""
    if isinstance(data, tuple | list) and len(data) == 2:
        return data[0], data[1]
    what = f"a {type(data).__name__}" + (
        f" of length {len(data)}" if isinstance(data, tuple | list) else ""
    )
    raise ValueError(
        f"`{arg}` must be a pair `(x, y)` of inputs and labels (NumPy arrays). Received: {what}"
    )


def check_unit_interval(value: Any, arg: str, note: str = "") -> float:
    """Returns `value` as a float if it is a finite number in [0, 1], or raises a Keras-style
    `ValueError` naming `arg` (`note` says what the ends mean)."""
    if is_real(value) and math.isfinite(value) and 0.0 <= value <= 1.0:
        return float(value)
    raise ValueError(f"`{arg}` must be a number in [0, 1]{note}. Received: {arg}={value!r}")
