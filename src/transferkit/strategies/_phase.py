"""`Phase`: one stage of a strategy (which layers train, for how long and how fast)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._serial import describe_fields
from .._validate import check_epochs, check_learning_rate, check_number, is_real
from ..freezing._layers import Boundary


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
        return describe_fields(self)


def check_rates(lr_mult: Any, layer_decay: Any) -> None:
    """Raise `ValueError` for a bad `lr_mult` or `layer_decay`, or both given."""
    if lr_mult is not None:
        note = ": the top block's rate over the lowest trainable block's (1 trains every "
        note += "block alike)"
        check_number(lr_mult, "lr_mult", positive=True, note=note)
    if layer_decay is not None and (not is_real(layer_decay) or not (0 <= layer_decay <= 1)):
        raise ValueError(
            "`layer_decay` must be a number between 0 and 1 (each block down from the head "
            "trains at `layer_decay` times the rate of the block above; 0 trains only the "
            f"head). Received: layer_decay={layer_decay!r}"
        )
    if lr_mult is not None and layer_decay is not None:
        raise ValueError(
            "Pass either `lr_mult` or `layer_decay`, not both. "
            f"Received: lr_mult={lr_mult!r}, layer_decay={layer_decay!r}"
        )
