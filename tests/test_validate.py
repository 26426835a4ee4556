"""`_validate`: the one positive-int check behind every count argument, and the one list check
behind `LoRA(targets=...)` and `GradualUnfreeze(boundaries=...)`."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

import transferkit as tk
from transferkit._validate import check_list, check_positive_int


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


def test_check_list_accepts_none_and_sequences_of_good_items() -> None:
    seen: list[Any] = []

    def good(item: Any) -> bool:
        seen.append(item)
        return True

    for value in (None, ["a"], ("a", "b"), range(3)):
        seen.clear()
        assert check_list(value, "names", "a list", good) is None
        assert seen == list(value or [])  # every item went through the predicate, in order
    assert check_list([], "names", "a list", empty=True) is None
    with pytest.raises(ValueError, match=r"Received: names=\[\]"):  # the same list, empty=False
        check_list([], "names", "a list")


@pytest.mark.parametrize(
    ("value", "empty", "match"),
    [
        ("dense", False, r"`names` must be a list of str, or None\. Received: names='dense'"),
        ([], False, r"Received: names=\[\]"),
        ({"dense"}, True, r"Received: names=\{'dense'\}"),
        (["dense", 3], True, r"Received: names=\['dense', 3\]"),
        (7, True, r"Received: names=7"),
    ],
)
def test_check_list_rejects(value: Any, empty: bool, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_list(value, "names", "a list of str", lambda item: isinstance(item, str), empty=empty)


def test_strategies_check_their_lists_when_made() -> None:
    with pytest.raises(
        ValueError, match=r"`targets` must be a non-empty list .* Received: targets='dense'"
    ):
        tk.LoRA(targets="dense")
    with pytest.raises(ValueError, match=r"Received: targets=\[\]"):
        tk.LoRA(targets=[])
    tk.LoRA(targets=["dense", keras.layers.Conv2D])
    with pytest.raises(
        ValueError, match=r"`boundaries` must be a list .* Received: boundaries='c'"
    ):
        tk.GradualUnfreeze(boundaries="c")
    assert tk.GradualUnfreeze(boundaries=[]).boundaries == []  # head, then everything
