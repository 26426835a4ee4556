"""Scale-out through Keras's and the backends' own engines, on two CPU devices.

Each test runs in a subprocess because the device count and the backend are fixed when the
backend starts. Each runs only in the pytest pass of its own backend (the subprocess pins it),
so the three-backend CI matrix runs each once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

COMMON = textwrap.dedent(
    """
    import json
    import keras
    import numpy as np
    import transferkit as tk

    from transferkit.models import lab_cnn

    rng = np.random.default_rng(0)
    x = rng.random((128, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 128)

    def run(devices):
        keras.utils.set_random_seed(0)
        model = lab_cnn()
        start = [w.copy() for w in model.get_weights()]
        result = tk.fine_tune(
            model, (x, y), validation=(x[:32], y[:32]), strategy=tk.PartialFreeze(upto=4),
            epochs=2, batch_size=32, seed=0, verbose=0,
        )
        trained = result.model.get_weights()
        comparison = tk.compare_strategies(
            model, ["full", "feature_extractor"], train=(x, y), validation=None,
            test=(x[:32], y[:32]), epochs=1, batch_size=32, verbose=0,
        )
        print("RESULT " + json.dumps({
            "devices": devices,
            "history_len": len(result.history["loss"]),
            "val_in_history": "val_loss" in result.history,
            "frozen_equal": [bool(np.array_equal(a, b)) for a, b in zip(start[:4], trained[:4])],
            "head_changed": not np.array_equal(start[-2], trained[-2]),
            "caller_untouched": all(
                np.array_equal(a, b) for a, b in zip(start, model.get_weights())
            ),
            "runs": len(comparison.runs),
            "accuracy_ok": all(0 <= r.metrics.accuracy <= 1 for r in comparison.runs),
        }))
    """
)

JAX_SCRIPT = COMMON + textwrap.dedent(
    """
    import jax
    devices = jax.devices()
    assert len(devices) == 2, devices
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    run(len(devices))
    """
)

TF_SCRIPT = (
    textwrap.dedent(
        """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    """
    )
    + COMMON
    + textwrap.dedent(
        """
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        run(strategy.num_replicas_in_sync)
    """
    )
)


def _run(script: str, backend: str, extra_env: dict[str, str]) -> dict[str, object]:
    env = {**os.environ, "KERAS_BACKEND": backend, **extra_env}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads(lines[-1][len("RESULT ") :]))


def _check(result: dict[str, object]) -> None:
    assert result["devices"] == 2
    assert result["history_len"] == 2
    assert result["val_in_history"] is True
    assert result["frozen_equal"] == [True, True, True, True]
    assert result["head_changed"] is True
    assert result["caller_untouched"] is True
    assert result["runs"] == 2
    assert result["accuracy_ok"] is True


@pytest.mark.backend("jax", reason="keras.distribution.DataParallel is JAX-only in Keras")
def test_jax_data_parallel_two_devices() -> None:
    # Keeps the suite's compile flags (tests/conftest.py): 28 s without them, 16 s with.
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    _check(_run(JAX_SCRIPT, "jax", {"XLA_FLAGS": flags}))


@pytest.mark.backend("tensorflow", reason="tf.distribute.MirroredStrategy is TensorFlow's")
def test_tensorflow_mirrored_strategy_two_devices() -> None:
    _check(_run(TF_SCRIPT, "tensorflow", {}))
