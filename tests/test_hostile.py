"""Hostile but realistic input across the public API: a clear error before anything trains,
or correct handling; and in every case the caller's model, arrays and files are unchanged.

The models are built once per module (tiny, shared) and their weights, trainable flags and
the data arrays are compared with snapshots after every case. A `TrainingProbe` on every
training call proves that refused calls never reach `fit`.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import transferkit as tk
from _train_helpers import TrainingProbe, assert_untouched, flags_of, weights_of
from transferkit import datasets, metrics

DIM, CLASSES = 6, 3


def _mlp(units: int = CLASSES, activation: str | None = "softmax", name: str = "hostile"):
    return keras.Sequential(
        [
            keras.Input((DIM,)),
            keras.layers.Dense(8, activation="relu", name="h1"),
            keras.layers.Dense(units, activation=activation, name="out"),
        ],
        name=name,
    )


def _two_outputs():
    inputs = keras.Input((DIM,), name="x")
    trunk = keras.layers.Dense(8, activation="relu", name="trunk")(inputs)
    a = keras.layers.Dense(3, activation="softmax", name="head_a")(trunk)
    b_hidden = keras.layers.Dense(5, activation="relu", name="b_hidden")(trunk)
    b = keras.layers.Dense(2, activation="softmax", name="head_b")(b_hidden)
    return keras.Model(inputs, [a, b], name="two_heads")


class _Subclassed(keras.Model):
    def __init__(self, **kwargs) -> None:  # kwargs: `clone_model` passes trainable, dtype
        super().__init__(**{"name": "subclassed", **kwargs})
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(CLASSES, activation="softmax")

    def call(self, inputs):
        return self.out(self.hidden(inputs))


class World:
    """The shared models, arrays and their snapshots."""

    def __init__(self) -> None:
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(48, DIM)).astype("float32")
        self.y = rng.integers(0, CLASSES, 48)
        self.y1h = np.eye(CLASSES, dtype="float32")[self.y]
        self.model = _mlp()
        self.binary_softmax = _mlp(1, "softmax", name="one_unit_softmax")
        self.two = _two_outputs()
        self.sub = _Subclassed()
        self.sub(self.x[:2])
        self.unbuilt = keras.Sequential([keras.layers.Dense(2)])
        self.models = [self.model, self.binary_softmax, self.two, self.sub]
        self.snapshots = [(weights_of(m), flags_of(m)) for m in self.models]
        self.arrays = [self.x, self.y, self.y1h]
        self.array_copies = [a.copy() for a in self.arrays]

    def check_untouched(self) -> None:
        for model, (weights, flags) in zip(self.models, self.snapshots, strict=True):
            assert_untouched(model, weights, flags)
        for a, b in zip(self.arrays, self.array_copies, strict=True):
            assert np.array_equal(a, b), "the caller's arrays changed"


@pytest.fixture(scope="module")
def world():
    return World()


def _fit(w, *, probe, **kwargs):
    args = {"epochs": 1, "verbose": 0, "callbacks": [probe], **kwargs}
    train = args.pop("train", (w.x, w.y))
    return tk.fine_tune(args.pop("model", w.model), train, **args)


def _cmp(w, tmp, *, probe, **kwargs):
    args = dict(train=(w.x, w.y), validation=None, test=(w.x, w.y), epochs=1, verbose=0)
    args.update(callbacks=[probe], **kwargs)
    return tk.compare_strategies(args.pop("model", w.model), args.pop("strategies", ["full"]),
                                 **args)  # fmt: skip


def _nan(w):
    x = w.x.copy()
    x[3, 1] = np.nan
    return x


def _inf(w):
    x = w.x.copy()
    x[0, 0] = np.inf
    return x


def _tf_bad_labels(w):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((w.x, w.y + 5)).batch(8)


CREATED: dict[str, bytes] = {}
"""The files the current case wrote as its input, by name, with their original bytes."""


def _file(tmp, name, content: bytes):
    path = tmp / name
    path.write_bytes(content)
    CREATED[path.name] = content
    return path


# Each case: (id, call(world, tmp_path, probe), exception type, message pattern).
ERROR_CASES = [
    # ---- freezing
    ("freeze_upto_too_big", lambda w, t, p: tk.freeze(tk.copy_model(w.model), upto=99),
     ValueError, "between -2 and 2"),
    ("freeze_upto_too_small", lambda w, t, p: tk.freeze(tk.copy_model(w.model), upto=-9),
     ValueError, "between -2 and 2"),
    ("freeze_unknown_name", lambda w, t, p: tk.freeze(tk.copy_model(w.model), upto="h9"),
     ValueError, "No leaf layer named 'h9'.*Did you mean"),
    ("freeze_bool", lambda w, t, p: tk.freeze(tk.copy_model(w.model), upto=True),
     TypeError, "a bool"),
    ("freeze_float", lambda w, t, p: tk.freeze(tk.copy_model(w.model), upto=1.5),
     TypeError, "must be None, an int"),
    ("freeze_not_a_model", lambda w, t, p: tk.freeze("model"), TypeError, "keras.Model"),
    ("freeze_unbuilt", lambda w, t, p: tk.freeze(w.unbuilt), ValueError, "not built"),
    ("freeze_foreign_layer", lambda w, t, p: tk.freeze(tk.copy_model(w.model),
     upto=w.two.get_layer("trunk")), ValueError, "not a layer of model"),
    ("unfreeze_upto_too_big", lambda w, t, p: tk.unfreeze(tk.copy_model(w.model), upto=5),
     ValueError, "between"),
    ("unfreeze_unknown", lambda w, t, p: tk.unfreeze(tk.copy_model(w.model), upto="nope"),
     ValueError, "No leaf layer"),
    ("frozen_bad_upto", lambda w, t, p: tk.frozen(w.model, upto=7).__enter__(),
     ValueError, "between"),
    ("leaf_layers_none", lambda w, t, p: tk.leaf_layers(None), TypeError, "keras.Model"),
    ("summary_not_model", lambda w, t, p: tk.trainable_summary(3), TypeError, "keras.Model"),
    ("copy_not_model", lambda w, t, p: tk.copy_model([1]), TypeError, "keras.Model"),
    # ---- heads
    ("head_zero_classes", lambda w, t, p: tk.replace_head(w.model, 0), ValueError,
     "num_classes"),
    ("head_negative_classes", lambda w, t, p: tk.replace_head(w.model, -2), ValueError,
     "num_classes"),
    ("head_float_classes", lambda w, t, p: tk.replace_head(w.model, 2.5), ValueError,
     "num_classes"),
    ("head_bool_classes", lambda w, t, p: tk.replace_head(w.model, True), ValueError,
     "num_classes"),
    ("head_hidden_str", lambda w, t, p: tk.replace_head(w.model, 3, hidden="64"), TypeError,
     "hidden"),
    ("head_hidden_zero", lambda w, t, p: tk.replace_head(w.model, 3, hidden=(0,)), ValueError,
     "hidden"),
    ("head_dropout_one", lambda w, t, p: tk.replace_head(w.model, 3, dropout=1.0), ValueError,
     "dropout"),
    ("head_dropout_negative", lambda w, t, p: tk.replace_head(w.model, 3, dropout=-0.1),
     ValueError, "dropout"),
    ("head_cut_out_of_range", lambda w, t, p: tk.replace_head(w.model, 3, cut=9), ValueError,
     "between"),
    ("head_cut_at_output", lambda w, t, p: tk.replace_head(w.model, 3, cut="out"), ValueError,
     "at the output layer"),
    ("head_cut_zero", lambda w, t, p: tk.replace_head(w.model, 3, cut=0), ValueError,
     "at least one layer"),
    ("head_one_unit_softmax", lambda w, t, p: tk.replace_head(w.model, 1,
     activation="softmax"), ValueError, "always outputs 1.0"),
    ("head_subclassed", lambda w, t, p: tk.replace_head(w.sub, 3), ValueError,
     "subclassed model"),
    ("head_two_outputs", lambda w, t, p: tk.replace_head(w.two, 3), ValueError,
     "2 outputs \\(head_a, head_b\\).*output="),
    ("head_unknown_output", lambda w, t, p: tk.replace_head(w.two, 3, output="head_c"),
     ValueError, "one of the model's outputs"),
    ("head_output_index", lambda w, t, p: tk.replace_head(w.two, 3, output=2), ValueError,
     "between -2 and 1"),
    ("extractor_pooling", lambda w, t, p: tk.as_feature_extractor(w.model, pooling="mean"),
     ValueError, "pooling"),
    ("extractor_pooling_2d", lambda w, t, p: tk.as_feature_extractor(w.model, pooling="avg"),
     ValueError, "4-D"),
    ("extractor_cut", lambda w, t, p: tk.as_feature_extractor(w.model, cut=3), ValueError,
     "between|output layer"),
    ("extractor_two_outputs", lambda w, t, p: tk.as_feature_extractor(w.two), ValueError,
     "2 outputs"),
    ("extractor_subclassed", lambda w, t, p: tk.as_feature_extractor(w.sub), ValueError,
     "subclassed"),
    # ---- training: settings
    ("fit_negative_lr", lambda w, t, p: _fit(w, probe=p, learning_rate=-0.05), ValueError,
     "`learning_rate` must be a finite number > 0"),
    ("fit_zero_lr", lambda w, t, p: _fit(w, probe=p, learning_rate=0), ValueError,
     "learning_rate"),
    ("fit_nan_lr", lambda w, t, p: _fit(w, probe=p, learning_rate=float("nan")), ValueError,
     "learning_rate"),
    ("fit_inf_lr", lambda w, t, p: _fit(w, probe=p, learning_rate=float("inf")), ValueError,
     "learning_rate"),
    ("fit_str_lr", lambda w, t, p: _fit(w, probe=p, learning_rate="0.1"), ValueError,
     "learning_rate"),
    ("fit_epochs_zero", lambda w, t, p: _fit(w, probe=p, epochs=0), ValueError, "`epochs`"),
    ("fit_epochs_float", lambda w, t, p: _fit(w, probe=p, epochs=2.0), ValueError, "`epochs`"),
    ("fit_epochs_bool", lambda w, t, p: _fit(w, probe=p, epochs=True), ValueError, "`epochs`"),
    ("fit_batch_zero", lambda w, t, p: _fit(w, probe=p, batch_size=0), ValueError,
     "`batch_size`"),
    ("fit_batch_str", lambda w, t, p: _fit(w, probe=p, batch_size="32"), ValueError,
     "`batch_size`"),
    ("fit_seed_str", lambda w, t, p: _fit(w, probe=p, seed="1"), ValueError, "`seed`"),
    ("fit_seed_negative", lambda w, t, p: _fit(w, probe=p, seed=-1), ValueError, "`seed`"),
    ("fit_steps_zero", lambda w, t, p: _fit(w, probe=p, steps_per_execution=0), ValueError,
     "steps_per_execution"),
    ("fit_precision", lambda w, t, p: _fit(w, probe=p, precision="float8"), ValueError,
     "precision"),
    ("fit_precision_inplace", lambda w, t, p: _fit(w, probe=p, precision="mixed_bfloat16",
     copy=False), ValueError, "copy=True"),
    ("fit_unknown_strategy", lambda w, t, p: _fit(w, probe=p, strategy="fulll"), ValueError,
     "Did you mean 'full'"),
    ("fit_strategy_class", lambda w, t, p: _fit(w, probe=p, strategy=tk.FullFineTune),
     TypeError, "not a class"),
    ("fit_unknown_optimizer", lambda w, t, p: _fit(w, probe=p, optimizer="adamm"), ValueError,
     "Unknown `optimizer`"),
    ("fit_optimizer_int", lambda w, t, p: _fit(w, probe=p, optimizer=42), TypeError,
     "optimizer"),
    ("fit_not_a_model", lambda w, t, p: tk.fine_tune("model", (w.x, w.y)), TypeError,
     "keras.Model"),
    ("fit_unbuilt", lambda w, t, p: _fit(w, probe=p, model=w.unbuilt), ValueError,
     "not built"),
    ("fit_one_unit_softmax", lambda w, t, p: _fit(w, probe=p, model=w.binary_softmax,
     train=(w.x, w.y % 2)), ValueError, "softmax over one unit"),
    ("fit_two_outputs", lambda w, t, p: _fit(w, probe=p, model=w.two), ValueError,
     "single-output.*2 outputs"),
    # ---- training: data
    ("data_dict", lambda w, t, p: _fit(w, probe=p, train={"x": w.x, "y": w.y}), ValueError,
     "Received: a dict"),
    ("data_one_tuple", lambda w, t, p: _fit(w, probe=p, train=(w.x,)), ValueError,
     "a tuple of length 1"),
    ("data_three_tuple", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y, w.y)), ValueError,
     "a tuple of length 3"),
    ("data_none", lambda w, t, p: _fit(w, probe=p, train=None), ValueError, "NoneType"),
    ("data_bare_array", lambda w, t, p: _fit(w, probe=p, train=w.x), ValueError,
     "Received: a ndarray"),
    ("data_string", lambda w, t, p: _fit(w, probe=p, train="data.npz"), ValueError,
     "Received: a str"),
    ("data_lengths", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y[:-1])), ValueError,
     "48 inputs but 47 labels"),
    ("data_empty", lambda w, t, p: _fit(w, probe=p, train=(w.x[:0], w.y[:0])), ValueError,
     "empty"),
    ("data_nan", lambda w, t, p: _fit(w, probe=p, train=(_nan(w), w.y)), ValueError,
     "1 NaN or infinite"),
    ("data_inf", lambda w, t, p: _fit(w, probe=p, train=(_inf(w), w.y)), ValueError,
     "NaN or infinite"),
    ("data_shape", lambda w, t, p: _fit(w, probe=p, train=(w.x[:, :4], w.y)), ValueError,
     "shape \\(4,\\) per sample but the model expects \\(6,\\)"),
    ("data_labels_high", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y + 3)), ValueError,
     "labels must be in \\[0, 2\\].*replace_head"),
    ("data_labels_negative", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y - 1)),
     ValueError, "labels must be in"),
    ("data_labels_fraction", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y + 0.5)),
     ValueError, "integer class ids"),
    ("data_labels_nan", lambda w, t, p: _fit(w, probe=p, train=(w.x, np.full(48, np.nan))),
     ValueError, "integer class ids"),
    ("data_labels_3d", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y[:, None, None])),
     ValueError, "shape \\(n,\\) or one-hot"),
    ("data_one_hot_broken", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y1h * 2)),
     ValueError, "not one-hot vectors"),
    ("data_strings", lambda w, t, p: _fit(w, probe=p, train=(w.x.astype(str), w.y)),
     ValueError, "numeric"),
    ("data_ragged_list", lambda w, t, p: _fit(w, probe=p, train=([[1.0] * DIM, [1.0]], [0, 1])),
     ValueError, "cannot be converted"),
    ("data_scalar_list", lambda w, t, p: _fit(w, probe=p, train=([], [])), ValueError,
     "empty|scalars"),
    ("val_one_hot_vs_int", lambda w, t, p: _fit(w, probe=p, validation=(w.x, w.y1h)),
     ValueError, "`train` labels are integer class ids but `validation` labels are one-hot"),
    ("val_int_vs_one_hot", lambda w, t, p: _fit(w, probe=p, train=(w.x, w.y1h),
     validation=(w.x, w.y)), ValueError, "`train` labels are one-hot"),
    ("val_nan", lambda w, t, p: _fit(w, probe=p, validation=(_nan(w), w.y)), ValueError,
     "`validation` inputs contain"),
    ("val_dict", lambda w, t, p: _fit(w, probe=p, validation={"x": w.x}), ValueError,
     "`validation` must be"),
    ("val_labels_high", lambda w, t, p: _fit(w, probe=p, validation=(w.x, w.y + 3)),
     ValueError, "`validation` labels must be in"),
    ("tfdata_bad_label", lambda w, t, p: _fit(w, probe=p, train=_tf_bad_labels(w)),
     ValueError, "`train \\(its first batch\\)` labels must be in \\[0, 2\\]"),
    # ---- comparison
    ("cmp_no_strategies", lambda w, t, p: _cmp(w, t, probe=p, strategies=[]), ValueError,
     "is empty"),
    ("cmp_strategies_str", lambda w, t, p: _cmp(w, t, probe=p, strategies="full"),
     ValueError, "must be a list"),
    ("cmp_duplicates", lambda w, t, p: _cmp(w, t, probe=p, strategies=["full", "full"]),
     ValueError, "duplicates"),
    ("cmp_unknown", lambda w, t, p: _cmp(w, t, probe=p, strategies=["partal"]), ValueError,
     "Unknown strategy"),
    ("cmp_seeds_zero", lambda w, t, p: _cmp(w, t, probe=p, seeds=0), ValueError, "`seeds`"),
    ("cmp_seeds_empty", lambda w, t, p: _cmp(w, t, probe=p, seeds=[]), ValueError, "`seeds`"),
    ("cmp_seeds_repeat", lambda w, t, p: _cmp(w, t, probe=p, seeds=[1, 1]), ValueError,
     "repeat"),
    ("cmp_seeds_float", lambda w, t, p: _cmp(w, t, probe=p, seeds=1.5), ValueError, "`seeds`"),
    ("cmp_seeds_strs", lambda w, t, p: _cmp(w, t, probe=p, seeds=["a"]), ValueError,
     "`seeds`"),
    ("cmp_test_none", lambda w, t, p: _cmp(w, t, probe=p, test=None), ValueError,
     "`test` is required"),
    ("cmp_test_dict", lambda w, t, p: _cmp(w, t, probe=p, test={"x": w.x}), ValueError,
     "`test` must be"),
    ("cmp_negative_lr", lambda w, t, p: _cmp(w, t, probe=p, learning_rate=-0.05), ValueError,
     "learning_rate"),
    ("cmp_epochs_zero", lambda w, t, p: _cmp(w, t, probe=p, epochs=0), ValueError, "`epochs`"),
    ("cmp_class_names_length", lambda w, t, p: _cmp(w, t, probe=p, class_names=["a", "b"]),
     ValueError, "predicts 3 classes. Received: 2 names"),
    ("cmp_class_names_str", lambda w, t, p: _cmp(w, t, probe=p, class_names="abc"),
     ValueError, "list of 3 names"),
    ("cmp_factory_returns_junk", lambda w, t, p: _cmp(w, t, probe=p, model=lambda: 3),
     TypeError, "factory"),
    ("cmp_val_one_hot", lambda w, t, p: _cmp(w, t, probe=p, validation=(w.x, w.y1h)),
     ValueError, "one-hot"),
    ("cmp_dataset_output", lambda w, t, p: _cmp(w, t, probe=p, train=_tf_good(w),
     output=t / "runs.jsonl"), ValueError, "`train` is not an `\\(x, y\\)` pair.*data_id"),
    ("cmp_empty_data_id", lambda w, t, p: _cmp(w, t, probe=p, data_id="",
     output=t / "runs.jsonl"), ValueError, "`data_id`"),
    # ---- resume: output files that are not this configuration's log
    ("out_is_directory", lambda w, t, p: _cmp(w, t, probe=p, output=t), ValueError,
     "not a regular file"),
    ("out_missing_dir", lambda w, t, p: _cmp(w, t, probe=p, output=t / "no" / "runs.jsonl"),
     ValueError, "does not exist"),
    ("out_notes", lambda w, t, p: _cmp(w, t, probe=p, output=_file(t, "notes.txt",
     b"my notes, no trailing newline")), ValueError, "not a transferkit comparison log"),
    ("out_other_jsonl", lambda w, t, p: _cmp(w, t, probe=p, output=_file(t, "o.jsonl",
     b'{"step": 1}\n{"step": 2}')), ValueError, "not a transferkit comparison log"),
    ("out_binary", lambda w, t, p: _cmp(w, t, probe=p, output=_file(t, "w.bin",
     bytes(range(256)) * 4)), ValueError, "not a transferkit comparison log"),
    ("out_foreign_header", lambda w, t, p: _cmp(w, t, probe=p, output=_file(t, "h.jsonl",
     json.dumps({"kind": "header", "epochs": 1}).encode() + b"\n")), ValueError,
     "different configuration.*Fields that differ: format"),
    # ---- metrics
    ("eval_batch_zero", lambda w, t, p: metrics.evaluate(w.model, w.x, w.y, batch_size=0),
     ValueError, "batch_size"),
    ("eval_nan", lambda w, t, p: metrics.evaluate(w.model, _nan(w), w.y), ValueError,
     "NaN or inf"),
    ("eval_lengths", lambda w, t, p: metrics.evaluate(w.model, w.x, w.y[:5]), ValueError,
     "same number of samples"),
    ("eval_labels_high", lambda w, t, p: metrics.evaluate(w.model, w.x, w.y + 3), ValueError,
     "range \\[0, 3\\)"),
    ("eval_class_names", lambda w, t, p: metrics.evaluate(w.model, w.x, w.y,
     class_names=["a"]), ValueError, "one name per class"),
    ("eval_class_names_str", lambda w, t, p: metrics.evaluate(w.model, w.x, w.y,
     class_names="abc"), ValueError, "single string"),
    ("eval_two_outputs", lambda w, t, p: metrics.evaluate(w.two, w.x, w.y), ValueError,
     "single output"),
    ("mfp_empty", lambda w, t, p: metrics.metrics_from_predictions([], []), ValueError,
     "at least one sample"),
    ("mfp_lengths", lambda w, t, p: metrics.metrics_from_predictions([0, 1], [0]), ValueError,
     "same number"),
    ("mfp_fraction", lambda w, t, p: metrics.metrics_from_predictions([0, 1.5], [0, 1]),
     ValueError, "integer class labels"),
    ("mfp_num_classes", lambda w, t, p: metrics.metrics_from_predictions([0], [0],
     num_classes=0), ValueError, "num_classes"),
    ("mfp_negative", lambda w, t, p: metrics.metrics_from_predictions([0, -1], [0, 1]),
     ValueError, "non-negative"),
    # ---- datasets
    ("ds_resize_zero", lambda w, t, p: datasets.resize_images(np.zeros((2, 4, 4)), 0),
     ValueError, "size"),
    ("ds_split_too_big", lambda w, t, p: datasets.train_val_test_split(w.x, w.y,
     val_size=100), ValueError, "val_size"),
    ("ds_split_lengths", lambda w, t, p: datasets.train_val_test_split(w.x, w.y[:3]),
     ValueError, "same number|samples"),
    ("ds_subset_missing_class", lambda w, t, p: datasets.subset_classes(w.x, w.y, [7]),
     ValueError, "7"),
    ("ds_subsample_too_many", lambda w, t, p: datasets.stratified_subsample(w.x, w.y, 999),
     ValueError, "999"),
    ("ds_missing_dir", lambda w, t, p: datasets.load_fashion_mnist(t / "none", download=False),
     FileNotFoundError, "none"),
]  # fmt: skip


def _tf_good(w):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((w.x, w.y)).batch(8)


def _files(tmp):
    return {p.name: p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_hostile_input_is_refused_before_anything_changes(world, tmp_path, call, error, match):
    CREATED.clear()
    probe = TrainingProbe()
    with pytest.raises(error, match=match):
        call(world, tmp_path, probe)
    assert probe.fits == 0, "a refused call trained"
    # The user's files keep every byte, and a refused call writes no file of its own.
    assert _files(tmp_path) == CREATED
    world.check_untouched()


# --------------------------------------------------------------------------- correct handling


def test_lists_and_numpy_integers_are_accepted(world):
    probe = TrainingProbe()
    x_list, y_list = world.x.tolist(), world.y.tolist()
    result = tk.fine_tune(world.model, (x_list, y_list), epochs=np.int64(1),
                          batch_size=np.int32(16), seed=np.int64(1), verbose=0,
                          callbacks=[probe])  # fmt: skip
    assert probe.fits == 1 and type(result.epochs) is int and result.seed == 1
    json.dumps(result.to_dict())  # NumPy integers did not leak into the record
    comparison = tk.compare_strategies(
        world.model, [tk.PartialFreeze(upto=np.int64(1))], train=(world.x, world.y),
        validation=None, test=(world.x, world.y), epochs=1, seeds=np.int64(2), verbose=0,
    )  # fmt: skip
    assert [run.seed for run in comparison.runs] == [0, 1]
    copy = tk.copy_model(world.model)
    assert tk.freeze(copy, upto=np.int64(1)).frozen == ("h1",)
    assert tk.replace_head(world.model, np.int64(4), hidden=(np.int64(5),)).output_shape == (
        None,
        4,
    )
    world.check_untouched()


def test_one_unit_heads_are_binary_and_read_correctly(world):
    binary = tk.replace_head(world.model, 1)
    assert binary.get_layer("head_classifier").activation.__name__ == "sigmoid"
    y = (world.x[:, 0] > 0).astype("int64")
    result = tk.fine_tune(binary, (world.x, y), epochs=2, verbose=0, learning_rate=0.05)
    probs = np.asarray(result.model.predict(world.x, verbose=0))
    assert np.all((probs > 0) & (probs < 1)) and np.ptp(probs) > 0  # not a constant 1.0
    assert isinstance(result.model.loss, keras.losses.BinaryCrossentropy)

    # A one-unit linear head is a logit: evaluate thresholds it at 0, not at 0.5.
    logit = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(1, name="logit")])
    kernel = np.zeros((DIM, 1), "float32")
    kernel[0, 0] = 1.0
    logit.get_layer("logit").set_weights([kernel, np.array([-0.2], "float32")])
    labels = (world.x[:, 0] > 0.2).astype("int64")  # logit > 0
    assert metrics.evaluate(logit, world.x, labels).accuracy == 1.0
    sigmoid = keras.Sequential(
        [keras.Input((DIM,)), keras.layers.Dense(1, activation="sigmoid", name="p")]
    )
    sigmoid.get_layer("p").set_weights([kernel * 10, np.array([-2.0], "float32")])
    assert metrics.evaluate(sigmoid, world.x, labels).accuracy == 1.0  # p > 0.5
    world.check_untouched()


def test_multi_output_models_grow_the_named_branch(world):
    new = tk.replace_head(world.two, 4, output="head_b")
    names = [layer.name for layer in new.layers]
    assert "b_hidden" in names and "head_a" not in names and "head_b" not in names
    assert new.output_shape == (None, 4)
    features = tk.as_feature_extractor(world.two, output=0)
    assert features.output_shape == (None, 8)  # the trunk, under head_a
    world.check_untouched()


def test_subclassed_models_train_and_are_checked(world):
    with pytest.raises(ValueError, match="labels must be in \\[0, 2\\]"):
        tk.fine_tune(world.sub, (world.x, world.y + 5), epochs=1, verbose=0)
    result = tk.fine_tune(world.sub, (world.x, world.y), epochs=1, verbose=0)
    assert len(result.history["loss"]) == 1
    world.check_untouched()


def test_a_shared_cache_sees_an_array_changed_in_place(world):
    cache = tk.FeatureCache()
    x = world.x.copy()
    first = tk.fine_tune(world.model, (x, world.y), strategy="feature_extractor", epochs=1,
                         verbose=0, cache=cache, seed=0)  # fmt: skip
    x[:] = x[::-1]  # same object, same shape, same sampled rows would be hit by a weak key
    second = tk.fine_tune(world.model, (x, world.y), strategy="feature_extractor", epochs=1,
                          verbose=0, cache=cache, seed=0)  # fmt: skip
    assert first.cache.used and second.cache.used
    assert not second.cache.shared and len(cache.entries) == 2
    world.check_untouched()
