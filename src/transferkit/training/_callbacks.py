"""Callbacks around a phase's `fit`: early stopping, and user callbacks that see the full model.

With the frozen-prefix cache Keras trains a head-only remainder, but a user's callback (a
`ModelCheckpoint`) must see the full model: the wrapper hands it over, syncs JAX state first,
and passes its `stop_training` on to the model training.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from typing import Any

import keras

from ..types import Model

_HOOKS = tuple(
    name
    for name in dir(keras.callbacks.Callback)
    if name.startswith("on_") and callable(getattr(keras.callbacks.Callback, name))
)


class FullModelCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Runs `inner` as if Keras were training `full`, while `trained` (its remainder) trains."""

    def __init__(self, inner: Any, full: Model, trained: Model) -> None:
        super().__init__()
        self.inner, self.full, self.trained = inner, full, trained
        for hook in _HOOKS:  # forward only what `inner` implements (keeps async dispatch)
            if not getattr(getattr(inner, hook), "_is_default", False):
                setattr(self, hook, self._forwarder(hook))

    def _forwarder(self, hook: str) -> Any:
        method = getattr(self.inner, hook)

        def forward(*args: Any, **kwargs: Any) -> None:
            # JAX keeps training state off the variables mid-epoch
            if (sync := getattr(self.trained, "jax_state_sync", None)) is not None:
                sync()
            method(*args, **kwargs)
            if getattr(self.full, "stop_training", False):
                self.trained.stop_training = True

        return forward

    def set_model(self, model: Model) -> None:
        self.full.stop_training = False
        if getattr(self.full, "optimizer", None) is None:
            # Callbacks read the step and rate from `model.optimizer` (TensorBoard's
            # `on_train_begin`), and the full model was never compiled: lend it the optimizer
            # that trains, for this `fit` only (`give_back` ends the loan).
            self.full.optimizer = model.optimizer
            self._lent = True
        self.inner.set_model(self.full)

    def give_back(self) -> None:
        """End the loan of the training optimizer to the full model, if `set_model` made one."""
        if getattr(self, "_lent", False):
            self.full.optimizer = None
            self._lent = False

    def set_params(self, params: dict[str, Any]) -> None:
        self.inner.set_params(params)


def give_back(callbacks: Sequence[Any]) -> None:
    """After `fit`: the full model holds no optimizer that `FullModelCallback` lent it."""
    for callback in callbacks:
        if isinstance(callback, FullModelCallback):
            callback.give_back()


def see_full_model(callbacks: Sequence[Any], full: Model, trained: Model) -> list[Any]:
    """`callbacks`, wrapped so that they see `full` when `trained` is not `full`."""
    if trained is full:
        return list(callbacks)
    return [FullModelCallback(cb, full, trained) for cb in callbacks]


_PATHS = (  # the callbacks that write to a directory (`..._dir`) or a file, and its attribute
    (keras.callbacks.TensorBoard, "log_dir"),
    (keras.callbacks.BackupAndRestore, "backup_dir"),
    (keras.callbacks.CSVLogger, "filename"),
    (keras.callbacks.ModelCheckpoint, "filepath"),
)


def _moved(callback: Any, attr: str, run: str) -> Any:
    """A shallow copy of `callback` that writes to `run`'s sub-directory or file."""
    old = str(getattr(callback, attr)).rstrip(os.sep) or os.sep
    ext = ".weights.h5" if old.endswith(".weights.h5") else os.path.splitext(old)[1]
    folder = attr.endswith("_dir")
    new = os.path.join(old, run) if folder else f"{old[: len(old) - len(ext)]}.{run}{ext}"
    moved, inside = copy.copy(callback), os.path.join(old, "")
    for key, value in vars(callback).items():  # paths made from it (BackupAndRestore's)
        if folder and isinstance(value, str) and value.startswith(inside):
            setattr(moved, key, os.path.join(new, value[len(inside) :]))
    setattr(moved, attr, new)
    return moved


def per_run(callbacks: Sequence[Any], run: str) -> list[Any]:
    """`callbacks`, each of `_PATHS` a shallow copy writing to `run`'s own path: `logs` ->
    `logs/full-seed0`, `log.csv` -> `log.full-seed0.csv` (see `compare_strategies`)."""
    run = re.sub(r"[^\w.=,()+-]", "_", re.sub(r"[\s'\"]", "", run))
    attrs = [next((a for kind, a in _PATHS if isinstance(c, kind)), None) for c in callbacks]
    return [c if a is None else _moved(c, a, run) for c, a in zip(callbacks, attrs, strict=True)]


EarlyStoppingSpec = int | keras.callbacks.EarlyStopping | None


def check_early_stopping(
    early_stopping: Any, *, has_validation: bool, metrics: Sequence[Any]
) -> None:
    """Raise `ValueError` for an early-stopping setting that cannot work with this run."""
    if early_stopping is None:
        return
    if isinstance(early_stopping, bool) or not isinstance(
        early_stopping, int | keras.callbacks.EarlyStopping
    ):
        raise ValueError(
            "`early_stopping` must be None, a patience (int >= 1) or a "
            f"`keras.callbacks.EarlyStopping`. Received: early_stopping={early_stopping!r}"
        )
    if isinstance(early_stopping, int) and early_stopping < 1:
        raise ValueError(
            f"`early_stopping` (a patience) must be at least 1. Received: "
            f"early_stopping={early_stopping}"
        )
    monitor = "val_loss" if isinstance(early_stopping, int) else early_stopping.monitor
    names = ["loss", *(m if isinstance(m, str) else getattr(m, "name", "") for m in metrics)]
    if monitor not in (known := names + [f"val_{n}" for n in names]):
        raise ValueError(
            f"`early_stopping` monitors {monitor!r}, which this run does not log. Monitor one "
            f"of {known}."
        )
    if monitor.startswith("val_") and not has_validation:
        raise ValueError(
            f"`early_stopping` monitors {monitor!r}, which needs validation data: pass "
            "`validation=(x_val, y_val)`."
        )


def make_early_stopping(early_stopping: Any) -> keras.callbacks.EarlyStopping | None:
    """A fresh `EarlyStopping` for one phase (a copy of the user's, or patience on val_loss)."""
    if early_stopping is None:
        return None
    if isinstance(early_stopping, keras.callbacks.EarlyStopping):
        return copy.copy(early_stopping)
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=int(early_stopping), restore_best_weights=True
    )


def early_stopping_config(early_stopping: Any) -> dict[str, Any] | None:
    """A JSON description of an early-stopping setting (for records and fingerprints)."""
    if (stopper := make_early_stopping(early_stopping)) is None:
        return None
    return {
        "monitor": stopper.monitor,
        "patience": stopper.patience,
        "min_delta": float(abs(stopper.min_delta)),
        "restore_best_weights": bool(stopper.restore_best_weights),
        "start_from_epoch": stopper.start_from_epoch,
    }
