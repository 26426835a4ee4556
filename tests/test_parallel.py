"""`compare_strategies(executor=...)`: runs on spawned local processes and a Dask cluster.

Each comparison here is compared with the same comparison run serially: the same runs, and
metrics equal within the tolerance measured per backend (a worker trains with one intra-op
thread, the serial run with all, so sums may round differently). One worker is killed with
SIGKILL in the middle of a run: its run is submitted again and the log ends whole.
"""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest

import transferkit as tk
from _train_helpers import images, split, tiny_cnn

TOLERANCE = 1e-3
"""Largest difference between a run's serial and parallel final loss (relative) and its test
accuracy (absolute) accepted. Measured on these runs: none on TensorFlow and JAX, 2.2e-7
(relative loss) on PyTorch; on the lab CNN (benchmarks/parallel.py) 0.001 test accuracy."""

STRATEGIES = ["full", "feature_extractor"]
SEARCH = dict(learning_rates=[1e-3, 3e-3, 1e-2], search="halving")


class KillOnce(keras.callbacks.Callback):
    """Kills the process that trains the first batch of any run, once (`marker` records it)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def on_train_batch_begin(self, batch, logs=None):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


def data():
    x, y = images(192)
    return split(x, y, 96, 32, 64)


def compare(executor=None, seeds=2, **kwargs):
    keras.utils.set_random_seed(0)
    (x, y), val, test = data()
    return tk.compare_strategies(
        tiny_cnn(),
        STRATEGIES,
        train=(x, y),
        validation=val,
        test=test,
        epochs=2,
        seeds=seeds,
        batch_size=16,
        verbose=0,
        executor=executor,
        **kwargs,
    )


def assert_same_runs(serial, parallel):
    assert [r.key for r in parallel.runs] == [r.key for r in serial.runs]
    for a, b in zip(serial.runs, parallel.runs, strict=True):
        assert b.metrics.accuracy == pytest.approx(a.metrics.accuracy, abs=TOLERANCE)
        assert b.history["loss"][-1] == pytest.approx(a.history["loss"][-1], rel=TOLERANCE)


def killed_and_resumed(tmp_path, executor):
    """A comparison on `executor` whose first run's worker is killed; then resumed."""
    marker, log = tmp_path / "killed", tmp_path / "runs.jsonl"
    kwargs = dict(output=log, callbacks=[KillOnce(str(marker))], keep_models="all")
    parallel = compare(executor, **kwargs)
    assert marker.exists()  # a worker was killed ...
    lines = log.read_text().splitlines()
    assert len(lines) == 1 + 4 and all(json.loads(line) for line in lines)  # ... the log whole
    assert sorted(r.key for r in tk.load_comparison(log).runs) == sorted(
        r.key for r in parallel.runs
    )
    assert len(list(log.with_suffix(".models").glob("*.keras"))) == 4
    more = compare(executor, seeds=3, **kwargs)  # resumed: only seed 2's runs train
    assert log.read_text().splitlines()[:5] == lines
    assert sorted(json.loads(line)["seed"] for line in log.read_text().splitlines()[5:]) == [2, 2]
    assert [r.metrics.accuracy for r in more.runs if r.seed < 2] == [
        r.metrics.accuracy for r in parallel.runs
    ]
    assert [r.resumed for r in more.runs] == [True, True, False] * 2
    return parallel


def test_local_processes_match_serial_survive_a_killed_worker_and_resume(tmp_path):
    serial = compare()
    parallel = killed_and_resumed(tmp_path, "processes")
    assert_same_runs(serial, parallel)
    x = data()[2][0]
    kept = parallel.model("full", 1)  # trained in a worker, sent back as a .keras file
    assert kept.predict(x, verbose=0).shape == (64, 3)


@pytest.mark.needs("distributed")
def test_a_dask_cluster_matches_serial_and_survives_a_killed_worker(tmp_path):
    from distributed import Client, LocalCluster

    env = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}
    with LocalCluster(n_workers=2, threads_per_worker=1, env=env) as cluster:
        with Client(cluster) as client:
            parallel = killed_and_resumed(tmp_path, client)
            halving = compare(client, seeds=1, **SEARCH)  # submitted rung by rung
    assert_same_runs(compare(), parallel)
    assert_same_runs(compare(seeds=1, **SEARCH), halving)
    assert sorted({r.rung for r in halving.runs}, key=str) == [0, None]


class Unregistered(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def _bad_cases():
    def with_unregistered_layer():
        return keras.Sequential(
            [keras.Input((8, 8, 1)), Unregistered(name="doubler"), *tiny_cnn().layers]
        )

    return [
        (dict(executor=object()), TypeError, 'must be None, "processes", a `concurrent'),
        (dict(executor="proceses"), ValueError, "Did you mean 'processes'"),
        (
            dict(executor=ThreadPoolExecutor(2)),
            ValueError,
            "must use processes: threads share Keras's global",
        ),
        (
            dict(executor="processes", model=with_unregistered_layer),
            ValueError,
            r"cannot be sent.*'doubler' \(Unregistered\)",
        ),
        (
            dict(
                executor="processes",
                callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: None)],
            ),
            ValueError,
            "cannot be sent.*lambda",
        ),
    ]


@pytest.mark.parametrize("kwargs, error, match", _bad_cases())
def test_bad_executor_input_fails_before_anything_is_written(tmp_path, kwargs, error, match):
    (x, y), val, test = data()
    log = tmp_path / "runs.jsonl"
    model = kwargs.pop("model", tiny_cnn)()
    with pytest.raises(error, match=match):
        tk.compare_strategies(
            model,
            STRATEGIES,
            train=(x, y),
            validation=val,
            test=test,
            epochs=1,
            verbose=0,
            output=log,
            **kwargs,
        )
    assert not log.exists()


@pytest.mark.backend("tensorflow", reason="a tf.data training set")
def test_a_dataset_that_cannot_be_sent_is_refused():
    import tensorflow as tf

    (x, y), val, test = data()
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match=r"sends the training data .* as NumPy arrays"):
        tk.compare_strategies(
            tiny_cnn(),
            STRATEGIES,
            train=train,
            validation=val,
            test=test,
            epochs=1,
            verbose=0,
            executor="processes",
        )
    assert np.isfinite(x).all()
