"""Argument checks shared by the public API, so each check and its message exist once."""

from __future__ import annotations

import numbers
from typing import Any, TypeGuard


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


def check_epochs(epochs: Any) -> None:
    """Raise `ValueError` unless `epochs` is None or a positive int (NumPy ints included)."""
    if epochs is not None:
        check_positive_int(epochs, "epochs")
