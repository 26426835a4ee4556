"""LoRA: only the adapters and the head move, the merge is exact, the result is plain Keras.

Tiny models on 8x8 images (tests/_train_helpers.py), a couple of epochs, on every backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import keras
import numpy as np
import pytest

import transferkit as tk
from _train_helpers import (
    TrainingProbe,
    assert_untouched,
    flags_of,
    images,
    lab_cnn,
    tiny_cnn,
    weights_of,
)
from transferkit.timing import count_params

# tiny_cnn leaves: conv, [bn], pool, flatten, dense (16*4 -> 8), out (8 -> 3)
FAST = {"verbose": 0, "batch_size": 16, "jit_compile": False}


def adapter_params(rank: int) -> int:
    """Adapter scalars on tiny_cnn's body: conv (3*3*1 -> 4) and dense (64 -> 8)."""
    return (9 * rank + rank * 4) + (64 * rank + rank * 8)


HEAD = 8 * 3 + 3


class Keep(keras.callbacks.Callback):
    """Keeps the model being trained (the adapted one, before the merge)."""

    trained: Any = None

    def on_train_end(self, logs: Any = None) -> None:
        self.trained = self.model


@pytest.fixture(scope="module")
def data():
    return images(64, classes=3, seed=0)


def by_name(model: Any) -> dict[tuple[str, str], np.ndarray]:
    """Every variable as NumPy, keyed by (layer name, variable name)."""
    out = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for v in layer._trainable_variables + layer._non_trainable_variables:
            out[(layer.name, v.name)] = np.array(keras.ops.convert_to_numpy(v), copy=True)
    return out


def test_step_zero_predicts_the_pretrained_function(data):
    model = tiny_cnn(bn=True)
    adapted = tk.LoRA(rank=3).prepare(tk.copy_model(model))
    assert adapted.get_layer("conv").lora_enabled and adapted.get_layer("dense").lora_enabled
    np.testing.assert_allclose(
        adapted.predict(data[0], verbose=0), model.predict(data[0], verbose=0), atol=1e-6
    )


def test_only_adapters_and_head_train_and_the_merge_is_exact(data):
    model = tiny_cnn(bn=True)
    weights, flags = weights_of(model), flags_of(model)
    start = by_name(model)
    keep = Keep()
    result = tk.fine_tune(
        model, data, validation=data, strategy=tk.LoRA(rank=2), epochs=2, seed=0,
        learning_rate=0.02, callbacks=[keep], **FAST,
    )  # fmt: skip
    assert_untouched(model, weights, flags)
    trained = by_name(keep.trained)
    for key, before in start.items():  # every pretrained body weight is bit-identical
        if key[0] != "out":
            assert np.array_equal(trained[key], before), key
    assert not np.array_equal(trained[("out", "kernel")], start[("out", "kernel")])
    for layer in ("conv", "dense"):
        assert np.abs(trained[(layer, "lora_kernel_b")]).max() > 0  # the adapters moved
    assert result.timing.trainable_params == adapter_params(2) + HEAD
    assert result.timing.total_params == count_params(model)[1] + adapter_params(2)
    assert "conv" in result.cache.reason and not result.cache.used
    merged = result.model  # plain Keras: no adapters, body frozen, head trainable
    assert all("lora_rank" not in layer.get_config() for layer in merged.layers)
    assert len(merged.weights) == len(model.weights)
    assert count_params(merged)[0] == HEAD
    assert not merged.get_layer("bn").trainable  # BatchNormalization stays in inference
    np.testing.assert_allclose(
        merged.predict(data[0], verbose=0), keep.trained.predict(data[0], verbose=0), atol=1e-5
    )
    # Compiled like every run's model: the run's loss (sparse cross-entropy) and metrics.
    probs = merged.predict(data[0], verbose=0)
    scores = merged.evaluate(*data, verbose=0, return_dict=True)
    assert sorted(scores) == ["accuracy", "loss"]
    picked = probs[np.arange(len(data[1])), data[1]]
    assert scores["loss"] == pytest.approx(-np.log(picked).mean(), rel=1e-4)
    assert scores["accuracy"] == pytest.approx((probs.argmax(axis=1) == data[1]).mean())


def test_merged_model_loads_in_a_process_without_transferkit(data, tmp_path):
    result = tk.fine_tune(tiny_cnn(), data, strategy="lora", epochs=1, seed=0, **FAST)
    path = tmp_path / "lora.keras"
    result.model.save(path)
    np.savez(tmp_path / "io.npz", x=data[0], y=result.model.predict(data[0], verbose=0))
    code = (
        "import sys, keras, numpy as np\n"
        f"io = np.load({str(tmp_path / 'io.npz')!r})\n"
        f"model = keras.saving.load_model({str(path)!r})\n"
        "np.testing.assert_allclose(model.predict(io['x'], verbose=0), io['y'], atol=1e-6)\n"
        "assert 'transferkit' not in sys.modules\n"
        "assert not any('lora' in v.path for v in model.weights)\n"
        "print('LOADED', keras.backend.backend())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)  # only Keras: transferkit must not even be importable by path
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"LOADED {keras.backend.backend()}" in proc.stdout


def test_targets_leave_the_other_layers_frozen_and_cached(data):
    model = tiny_cnn()
    keep = Keep()
    strategy = tk.LoRA(rank=2, alpha=4.0, targets=["dense"])
    result = tk.fine_tune(model, data, strategy=strategy, epochs=1, seed=0, callbacks=[keep],
                          **FAST)  # fmt: skip
    assert result.timing.trainable_params == 64 * 2 + 2 * 8 + HEAD
    assert result.cache.used and result.cache.prefix_layers == 3  # conv, pool, flatten
    assert not keep.trained.get_layer("conv").lora_enabled
    assert keep.trained.get_layer("dense").lora_alpha == 4.0
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(result.model.get_layer("conv").kernel),
        keras.ops.convert_to_numpy(model.get_layer("conv").kernel),
    )
    by_class = tk.LoRA(targets=[keras.layers.Conv2D]).prepare(tk.copy_model(model))
    assert by_class.get_layer("conv").lora_enabled
    assert not by_class.get_layer("dense").lora_enabled


def test_a_small_fraction_of_the_lab_cnn_trains():
    # The transfer setup: the lab CNN pretrained on 5 classes, with a 5-way head.
    model = lab_cnn(5)
    adapted = tk.LoRA(rank=4).prepare(tk.copy_model(model))
    trainable, total = count_params(adapted)
    adapters = (9 * 4 + 4 * 32) + (288 * 4 + 4 * 64) + (3136 * 4 + 4 * 128)
    assert (trainable, total) == (adapters + 128 * 5 + 5, 420_997 + adapters) == (15_273, 435_625)
    assert trainable / count_params(model)[1] < 0.04


def test_works_in_compare_strategies_with_seeds(data):
    model = tiny_cnn()
    weights, flags = weights_of(model), flags_of(model)
    comparison = tk.compare_strategies(
        model, [tk.LoRA(rank=2)], train=data, validation=None, test=data, epochs=1, seeds=2,
        **FAST,
    )  # fmt: skip
    assert comparison.strategies == ("lora(rank=2)",)
    runs = comparison.runs_of("lora(rank=2)")
    assert [run.seed for run in runs] == [0, 1]
    assert all(run.timing.trainable_params == adapter_params(2) + HEAD for run in runs)
    assert runs[0].history["loss"] != runs[1].history["loss"]
    again = tk.fine_tune(model, data, strategy=tk.LoRA(rank=2), epochs=1, seed=0, **FAST)
    assert again.history["loss"] == runs[0].history["loss"]  # a seed reproduces its run
    assert_untouched(model, weights, flags)


def test_names_and_fingerprint():
    assert tk.resolve_strategy("lora") == tk.LoRA()
    assert tk.LoRA().name == "lora(rank=4)"
    strategy = tk.LoRA(rank=3, alpha=6, targets=["conv", keras.layers.Dense], cut="dense")
    assert strategy.name == "lora(rank=3, alpha=6, targets=[conv, Dense], cut='dense')"
    described = json.loads(json.dumps(strategy.to_dict()))
    assert described["rank"] == 3 and described["alpha"] == 6
    assert described["targets"] == ["conv", "Dense"] and described["type"] == "LoRA"
    assert tk.LoRA(rank=2).to_dict() != tk.LoRA(rank=3).to_dict()
    assert tk.LoRA(alpha=2).to_dict() != tk.LoRA(alpha=3).to_dict()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rank": 0}, r"`rank` must be a positive int. Received: rank=0"),
        ({"rank": -2}, r"Received: rank=-2"),
        ({"rank": 2.0}, r"Received: rank=2.0"),
        ({"rank": True}, r"Received: rank=True"),
        ({"alpha": 0}, r"`alpha` must be a positive number .* Received: alpha=0"),
        ({"alpha": -1.5}, r"Received: alpha=-1.5"),
        ({"alpha": float("nan")}, r"Received: alpha=nan"),
        ({"alpha": "8"}, r"Received: alpha='8'"),
        ({"targets": "conv"}, r"`targets` must be a non-empty list .* Received: targets='conv'"),
        ({"targets": []}, r"Received: targets=\[\]"),
        ({"targets": [3]}, r"Received: targets=\[3\]"),
    ],
)
def test_bad_settings_raise_on_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tk.LoRA(**kwargs)


def no_supported_layer() -> keras.Model:
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.DepthwiseConv2D(3, name="depthwise"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(3, name="out"),
    ])  # fmt: skip


def constrained() -> keras.Model:
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(2, 3, kernel_constraint="max_norm", name="conv"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(3, name="out"),
    ])  # fmt: skip


@pytest.mark.parametrize(
    "build, strategy, match",
    [
        (no_supported_layer, tk.LoRA(),
         r"no layer to adapt .* Dense, EinsumDense, Embedding, Conv1D, Conv2D and Conv3D.*"
         r"The body has: BatchNormalization, DepthwiseConv2D, Flatten"),
        (constrained, tk.LoRA(), r"no layer to adapt"),
        (constrained, tk.LoRA(targets=["conv"]), r"layer 'conv'.* `kernel_constraint`"),
        (tiny_cnn, tk.LoRA(targets=["dens"]), r"'dens' matches no layer .* Did you mean: 'dense'"),
        (tiny_cnn, tk.LoRA(targets=["out"]), r"'out', which is in the head"),
        (tiny_cnn, tk.LoRA(targets=[keras.layers.Embedding]), r"'Embedding' matches no layer"),
        (tiny_cnn, tk.LoRA(cut="nope"), r"nope"),
    ],
)  # fmt: skip
def test_bad_models_and_targets_raise_before_training(build, strategy, match, data):
    model = build()
    weights, flags = weights_of(model), flags_of(model)
    probe = TrainingProbe()
    with pytest.raises(ValueError, match=match):
        tk.fine_tune(model, data, strategy=strategy, epochs=1, callbacks=[probe], **FAST)
    assert probe.fits == 0
    assert_untouched(model, weights, flags)


@pytest.mark.needs("keras_hub")
def test_keras_hub_image_classifier_keeps_its_class(data):
    import keras_hub

    body = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64],
        stackwise_num_blocks=[1], stackwise_num_strides=[1], block_type="basic_block",
        image_shape=(8, 8, 3), name="resnet",
    )  # fmt: skip
    clf = keras_hub.models.ImageClassifier(
        backbone=body, num_classes=3, preprocessor=None, name="classifier"
    )
    x = np.repeat(data[0], 3, axis=-1)
    keep = Keep()
    result = tk.fine_tune(clf, (x, data[1]), strategy=tk.LoRA(rank=2), epochs=1, seed=0,
                          callbacks=[keep], **FAST)  # fmt: skip
    assert type(result.model) is type(clf)
    assert result.timing.trainable_params < 0.2 * count_params(clf)[1]
    np.testing.assert_allclose(
        result.model.predict(x, verbose=0), keep.trained.predict(x, verbose=0), atol=1e-5
    )
    assert not any("lora" in v.path for v in result.model.weights)


def test_nested_embedding_and_einsum_layers_merge_exactly():
    inner = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        keras.layers.Embedding(20, 4, name="embed"),
        keras.layers.Flatten(name="flat"),
        keras.layers.EinsumDense("ab,bc->ac", output_shape=8, name="einsum"),
    ], name="inner")  # fmt: skip
    inputs = keras.Input((6,), dtype="int32")
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(inner(inputs)))
    x = np.random.default_rng(0).integers(0, 20, size=(16, 6)).astype("int32")
    strategy = tk.LoRA(rank=2)
    adapted = strategy.prepare(tk.copy_model(model))
    assert count_params(adapted)[0] == (20 * 2 + 2 * 4) + (24 * 2 + 2 * 8) + 8 * 3 + 3
    for v in adapted.trainable_weights:  # as if trained: the adapters are no longer zero
        v.assign(keras.random.normal(v.shape, seed=1) * 0.1)
    merged = strategy.finish(adapted)
    assert isinstance(merged.get_layer("inner"), keras.Sequential)
    assert not any("lora" in v.path for v in merged.weights)
    assert count_params(merged) == (27, count_params(model)[1])
    np.testing.assert_allclose(
        merged.predict(x, verbose=0), adapted.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
