"""`_validate`: the one positive-int check behind every count argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from transferkit._validate import check_positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(1)])
def test_check_positive_int_accepts(value: Any) -> None:
    assert check_positive_int(value, "epochs") == int(value)
    assert type(check_positive_int(value, "epochs")) is int


@pytest.mark.parametrize(
    ("value", "allow_zero", "match"),
    [
        (0, False, r"`epochs` must be a positive int\. Received: epochs=0"),
        (-1, True, r"`epochs` must be a non-negative int\. Received: epochs=-1"),
        (True, False, r"Received: epochs=True"),
        (2.0, False, r"Received: epochs=2\.0"),
        ("3", False, r"Received: epochs='3'"),
        (None, False, r"Received: epochs=None"),
    ],
)
def test_check_positive_int_rejects(value: Any, allow_zero: bool, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_positive_int(value, "epochs", allow_zero=allow_zero)
    assert check_positive_int(0, "epochs", allow_zero=True) == 0
