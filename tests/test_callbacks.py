"""User callbacks in a comparison: one log path per run, and no warning printed once per run
(issue 25)."""

from __future__ import annotations

import csv
import logging
import os
import warnings

import keras
import numpy as np
import pytest

import transferkit as tk
from transferkit.training._callbacks import per_run


def _model() -> keras.Model:
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu", name="body")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(hidden))


def _data(n: int = 48):
    x = np.random.default_rng(0).normal(size=(n, 8)).astype("float32")
    return x, np.arange(n) % 3


def test_per_run_names_each_path_and_leaves_the_callbacks_given_alone(tmp_path) -> None:
    given = [
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "m.weights.h5"), save_weights_only=True),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup") + os.sep),
        keras.callbacks.TerminateOnNaN(),
    ]
    csv_log, checkpoint, backup, other = per_run(given, "feature_extractor(cut='a b/c')-seed0")
    run = "feature_extractor(cut=ab_c)-seed0"
    assert csv_log.filename == str(tmp_path / f"log.{run}.csv")
    assert checkpoint.filepath == str(tmp_path / f"m.{run}.weights.h5")
    assert backup.backup_dir == str(tmp_path / "backup" / run)
    assert backup._weights_path == str(tmp_path / "backup" / run / "latest.weights.h5")
    assert other is given[3]
    assert given[0].filename == str(tmp_path / "log.csv")
    assert given[2]._weights_path == str(tmp_path / "backup" / "latest.weights.h5")


@pytest.mark.parametrize(
    "tensorboard", [False, pytest.param(True, marks=pytest.mark.needs("tensorboard"))]
)
def test_each_run_of_a_comparison_logs_to_its_own_path(tensorboard, tmp_path) -> None:
    callbacks = [
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras")),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False),
    ]
    if tensorboard:
        callbacks = [keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))]
    x, y = _data()
    tk.compare_strategies(_model(), ["full", "feature_extractor"], train=(x, y), test=(x, y),
                          epochs=2, seeds=2, callbacks=callbacks, verbose=0)  # fmt: skip
    runs = [f"{s}-seed{seed}" for s in ("full", "feature_extractor") for seed in (0, 1)]
    if tensorboard:
        assert sorted(os.listdir(tmp_path / "tb")) == sorted(runs)
        assert all(os.listdir(tmp_path / "tb" / run / "train") for run in runs)
        return
    for run in runs:
        with open(tmp_path / f"log.{run}.csv") as f:
            assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
        saved = keras.saving.load_model(tmp_path / f"m.{run}.keras")
        assert saved.count_params() == _model().count_params()
        assert (tmp_path / "backup" / run / "latest.weights.h5").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".csv") == sorted(
        f"log.{run}.csv" for run in runs
    )
    assert callbacks[0].filename == str(tmp_path / "log.csv")  # the callbacks given: unchanged


def test_a_learning_rate_search_names_the_rate(tmp_path) -> None:
    x, y = _data()
    csv_log = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    tk.compare_strategies(_model(), ["full"], train=(x, y), validation=(x, y), test=(x, y),
                          epochs=1, learning_rates=[1e-3, 1e-2], callbacks=[csv_log],
                          verbose=0)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "log.full-lr0.001-seed0.csv", "log.full-lr0.01-seed0.csv"
    ]  # fmt: skip


@pytest.mark.compiled  # TensorFlow's retracing note comes from traced functions
def test_a_comparison_on_tf_data_warns_nothing_once_per_run() -> None:
    tf = pytest.importorskip("tensorflow")
    x, y = _data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    notes: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: notes.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            strategies = ["full", "feature_extractor"]
            tk.compare_strategies(_model(), strategies, train=data, validation=data,
                                  test=(x, y), epochs=2, seeds=2, verbose=0)  # fmt: skip
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    messages = [str(w.message) for w in caught] + notes
    assert not [m for m in messages if "shuffle=True" in m or "tf.function retracing" in m]
