"""The trained models a comparison keeps: in memory, or as `.keras` files beside its log."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import keras

from ..freezing._copy import copy_model
from ..types import Model
from ._records import RunKey

KEEP_MODELS = ("best", "all", "none")


def models_dir(log: str | os.PathLike[str]) -> Path:
    """Where the models of the comparison logged at `log` go: `runs.jsonl` -> `runs.models/`."""
    return Path(log).with_suffix(".models")


def file_name(key: RunKey) -> str:
    """A run's model file: readable, and unique for its strategy label, seed, rate."""
    strategy, seed, rate, _ = key
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", strategy)[:60]
    digest = hashlib.sha1(strategy.encode()).hexdigest()[:6]
    rate_text = "default" if rate is None else f"{rate:g}"
    return f"{slug}-{digest}-seed{seed}-lr{rate_text}.keras"


def savable(model: Model) -> Model:
    """`model`, or an uncompiled copy when its optimizer is transferkit's (`LayerRates`): the
    file then loads where only Keras is installed."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and type(optimizer).__module__.startswith("transferkit"):
        return copy_model(model)
    if optimizer is not None and not optimizer.built:
        # A model compiled after training (its remainder trained) has an unbuilt optimizer;
        # loading builds one for its variables, and Keras warns that the two differ.
        optimizer.build(model.trainable_variables)
    return model


def save_atomically(model: Model, path: Path) -> Path:
    """Write `model` to `path` through a temporary file, so `path` is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.keras")
    try:
        savable(model).save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class ModelKeeper:
    """Keeps the full-length runs' trained models as `keep_models` says.

    Without a log the models stay in memory; with one, each is written to its own `.keras`
    file in `models_dir(log)` as its run finishes, and a resumed comparison finds them there.
    With `"best"`, the models other than the best run's are dropped (their files deleted) once
    the comparison knows its best run.
    """

    def __init__(self, keep: str, log: str | os.PathLike[str] | None) -> None:
        self.keep = keep
        self.dir = None if log is None else models_dir(log)
        self.kept: dict[RunKey, Model | Path] = {}
        self._written: set[Path] = set()

    def add(self, key: RunKey, model: Model) -> None:
        """Keep the model of a run that just trained (shortened halving runs are not kept)."""
        if self.keep == "none" or key[3] is not None:
            return
        if self.dir is None:
            self.kept[key] = model
            return
        path = save_atomically(model, self.dir / file_name(key))
        self._written.add(path)
        self.kept[key] = path

    def find(self, key: RunKey) -> None:
        """Keep the file of a resumed run, if an earlier call wrote one."""
        if self.keep != "none" and self.dir is not None and (self.dir / file_name(key)).is_file():
            self.kept[key] = self.dir / file_name(key)

    def only(self, key: RunKey | None) -> Mapping[RunKey, Model | Path]:
        """With `"best"`, drop every model but `key`'s; what is kept.

        Files this comparison wrote for the dropped models are deleted; files an earlier call
        wrote (found on resuming) are left where they are.
        """
        if self.keep == "best":
            for other in [k for k in self.kept if k != key]:
                value = self.kept.pop(other)
                if isinstance(value, Path) and value in self._written:
                    value.unlink(missing_ok=True)
        return dict(self.kept)


def load(value: Model | Path) -> Model:
    """A kept model: itself, or loaded from its file."""
    return value if isinstance(value, keras.Model) else keras.saving.load_model(value)
