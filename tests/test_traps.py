"""Mistakes users make, each caught or handled as documented (issue 25): label ranges with the
right advice, LoRA ranks a layer cannot have, L2-SP after `replace_head`, class weights,
confidence intervals within a metric's range."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest

import transferkit as tk
from transferkit.comparison._records import metric_bounds, summarize


def _model(units: int = 5) -> keras.Model:
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu", name="body")(inputs)
    return keras.Model(inputs, keras.layers.Dense(units, activation="softmax", name="out")(hidden))


def _data(n: int = 64, classes: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, np.arange(n) % classes


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (lambda y: y + 1, r"labels in \[1, 5\]\. They look 1-based \(1\.\.5\): pass `y - 1`"),
        (lambda y: y + 5, r"They are 5 class ids out of a larger set: relabel them 0\.\.4 with "
                          r"`transferkit\.datasets\.subset_classes"),
        (lambda y: y * 3, r"relabel them 0\.\.4.*only if the model must tell all 13 ids apart, "
                          r"use `replace_head\(model, 13\)`"),
        (lambda y: y - 1, r"labels must be in \[0, 4\].*Use `replace_head\(model, 4\)`"),
    ],
)  # fmt: skip
def test_label_range_errors_give_the_fix_that_applies(labels, match) -> None:
    x, y = _data()
    with pytest.raises(ValueError, match=match):
        tk.fine_tune(_model(), (x, labels(y)), epochs=1, verbose=0)


def test_lora_rank_above_a_layers_rank_is_refused_naming_the_layer() -> None:
    model = _model()  # body: an 8x16 kernel, rank at most 8
    x, y = _data()
    before = [w.copy() for w in model.get_weights()]
    match = r"`LoRA\(rank=100000\)` is larger than the layer 'body' allows: its kernel \(8, 16\)"
    with pytest.raises(ValueError, match=match + r" has rank at most 8"):
        tk.fine_tune(model, (x, y), strategy=tk.LoRA(rank=100000), epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    result = tk.fine_tune(model, (x, y), strategy=tk.LoRA(rank=8), epochs=1, verbose=0)
    assert np.isfinite(result.history["loss"]).all()


def test_l2sp_lets_a_head_from_replace_head_move_freely() -> None:
    # A strong pull to the start (alpha) and none towards zero (beta=0): the body barely moves.
    # The head `replace_head` made is new, not pretrained: it must train as freely as without
    # L2-SP, not be held at its random start.
    x, y = _data(96, classes=3)
    start = tk.replace_head(_model(), 3)
    head_start = start.get_layer("head_classifier").get_weights()[0].copy()
    body_start = start.get_layer("body").get_weights()[0].copy()

    def moved(strategy):
        result = tk.fine_tune(start, (x, y), strategy=strategy, epochs=3, seed=0, verbose=0,
                              learning_rate=1e-2)  # fmt: skip
        head = result.model.get_layer("head_classifier").get_weights()[0]
        body = result.model.get_layer("body").get_weights()[0]
        return np.abs(head - head_start).mean(), np.abs(body - body_start).mean()

    head_free, body_free = moved(tk.FullFineTune())
    head_l2sp, body_l2sp = moved(tk.FullFineTune(regularizer=tk.L2SP(alpha=100.0, beta=0.0)))
    assert body_l2sp < 0.5 * body_free  # the pretrained body is anchored
    assert head_l2sp > 0.7 * head_free  # the new head is not


def test_pretrained_weights_leave_out_the_new_head() -> None:
    from transferkit.freezing._heads import pretrained_weights

    model = tk.replace_head(_model(), 3, hidden=(4,))
    names = {w.path.split("/")[0] for w in pretrained_weights(model)}
    assert names == {"body"}


def test_class_weight_reaches_the_loss() -> None:
    x, y, start = *_data(60, classes=3), _model(3)
    plain = tk.fine_tune(start, (x, y), epochs=2, seed=0, verbose=0)
    # Weighting every class by 2 doubles each sample's loss; Adam is invariant to the scale of
    # the gradient (up to its epsilon), so the weights follow the same path at twice the loss.
    doubled = tk.fine_tune(_model(3), (x, y), epochs=2, seed=0, verbose=0,
                           class_weight={0: 2.0, 1: 2.0, 2: 2.0})  # fmt: skip
    assert doubled.history["loss"] == pytest.approx(
        [2 * v for v in plain.history["loss"]], rel=1e-3
    )
    heavy = tk.fine_tune(_model(3), (x, y), epochs=2, seed=0, verbose=0,
                         class_weight={0: 1.0, 1: 1.0, 2: 20.0})  # fmt: skip
    assert heavy.history["loss"][0] > 3 * plain.history["loss"][0]


@pytest.mark.parametrize(
    ("class_weight", "match"),
    [
        ({0: 1.0, 7: 2.0}, r"`class_weight` has keys \[7\] but the model predicts 3 classes"),
        ({0: -1.0}, "values must be finite numbers >= 0"),
        ({"a": 1.0}, r"keys must be class ids \(ints >= 0\)"),
        ({}, "non-empty dict"),
        ([1.0, 2.0], "non-empty dict"),
    ],
)
def test_bad_class_weight_fails_before_training(class_weight, match, tmp_path) -> None:
    x, y = _data(60, classes=3)
    with pytest.raises(ValueError, match=match):
        tk.fine_tune(_model(3), (x, y), epochs=1, verbose=0, class_weight=class_weight)
    log = tmp_path / "runs.jsonl"
    with pytest.raises(ValueError, match=match):
        tk.compare_strategies(_model(3), ["full"], train=(x, y), test=(x, y), verbose=0,
                              class_weight=class_weight, output=log)  # fmt: skip
    assert not log.exists()


def test_compare_strategies_passes_class_weight_to_every_run() -> None:
    x, y = _data(60, classes=3)
    weights = {0: 1.0, 1: 1.0, 2: 20.0}
    comparison = tk.compare_strategies(_model(3), ["full"], train=(x, y), test=(x, y),
                                       epochs=1, verbose=0, class_weight=weights)  # fmt: skip
    assert comparison.config["class_weight"] == {"0": 1.0, "1": 1.0, "2": 20.0}
    plain = tk.compare_strategies(_model(3), ["full"], train=(x, y), test=(x, y), epochs=1,
                                  verbose=0)  # fmt: skip
    assert "class_weight" not in plain.config


def test_confidence_intervals_stay_within_the_metrics_range() -> None:
    mean, _, low, high = summarize([0.5, 0.99], metric_bounds("accuracy"))
    assert (low, high) == (0.0, 1.0) and mean == pytest.approx(0.745)
    _, _, low, high = summarize([1.0, 30.0], metric_bounds("train_seconds"))
    assert low == 0.0 and high > 30.0
    _, _, low, high = summarize([-0.9, 0.9], metric_bounds("accuracy_gain_vs_scratch"))
    assert (low, high) == (-1.0, 1.0)
    _, _, low, high = summarize([0.5, 0.52, 0.51])  # unbounded: the plain t interval
    assert 0.0 < low < 0.5 and 0.52 < high < 1.0


def _comparison_of(n_strategies: int, seeds: int = 2) -> tk.Comparison:
    from transferkit.metrics import metrics_from_predictions
    from transferkit.timing import TrainingTiming

    y_true = np.array([0, 1] * 20)
    runs = []
    for s in range(n_strategies):
        for seed in range(seeds):
            y_pred = y_true.copy()
            y_pred[: s + seed] = 1 - y_pred[: s + seed]
            m = metrics_from_predictions(y_true, y_pred)
            timing = TrainingTiming(train_seconds=1.0 + s, epoch_seconds=(1.0, 1.0),
                                    samples_per_second=None, trainable_params=10 * (s + 1),
                                    total_params=100)  # fmt: skip
            runs.append(tk.RunRecord(
                strategy="scratch" if s == 0 else f"s{s}", seed=seed, epochs=2, metrics=m,
                timing=timing, history={"accuracy": [0.5, 0.6], "val_accuracy": [0.5, 0.55]},
                validation=m,
            ))  # fmt: skip
    return tk.Comparison(runs=tuple(runs))


def test_report_leads_with_one_row_per_strategy_and_marks_the_choice(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="the report's plots need matplotlib")
    comparison = _comparison_of(7)
    page = comparison.to_html(tmp_path / "report.html").read_text()
    lead = page[page.index('<table id="strategies">') :]
    lead = lead[: lead.index("</table>")]
    assert lead.count("<tr>") == 1 + 7  # the header and one row per strategy
    assert f"★ {comparison.best()}" in lead
    assert "validation accuracy" in lead and "gain over scratch" in lead
    assert page.index('id="strategies"') < page.index('id="summary"')


def test_history_plot_is_a_grid_readable_at_page_width() -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    import matplotlib.pyplot as plt

    figure = _comparison_of(7).plot_history()
    try:
        width, height = figure.get_size_inches() * figure.dpi
        visible = [ax for ax in figure.axes if ax.get_visible()]
        assert len(visible) == 7
        assert width <= 1200 and height > 2 * 300  # 3 columns, 3 rows
    finally:
        plt.close(figure)


def _builtin_callbacks(tmp_path):
    """Each of Keras's built-in callbacks that needs no network, EMA optimizer or backup."""
    keras_callbacks = keras.callbacks
    return {
        "CSVLogger": lambda: keras_callbacks.CSVLogger(str(tmp_path / "log.csv")),
        "EarlyStopping": lambda: keras_callbacks.EarlyStopping(monitor="loss", patience=1),
        "History": keras_callbacks.History,
        "LambdaCallback": lambda: keras_callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: None
        ),
        "LearningRateScheduler": lambda: keras_callbacks.LearningRateScheduler(lambda e, lr: lr),
        "ModelCheckpoint": lambda: keras_callbacks.ModelCheckpoint(str(tmp_path / "m.keras")),
        "ProgbarLogger": keras_callbacks.ProgbarLogger,
        "ReduceLROnPlateau": lambda: keras_callbacks.ReduceLROnPlateau(monitor="loss"),
        "TerminateOnNaN": keras_callbacks.TerminateOnNaN,
        "TensorBoard": lambda: keras_callbacks.TensorBoard(log_dir=str(tmp_path / "tb")),
    }


@pytest.mark.parametrize(
    "name",
    ["CSVLogger", "EarlyStopping", "History", "LambdaCallback", "LearningRateScheduler",
     "ModelCheckpoint", "ProgbarLogger", "ReduceLROnPlateau", "TerminateOnNaN",
     pytest.param("TensorBoard", marks=pytest.mark.needs("tensorboard"))],
)  # fmt: skip
def test_every_builtin_callback_works_on_a_cached_run(name, tmp_path) -> None:
    made = _builtin_callbacks(tmp_path)
    x, y = _data(48, classes=3)
    result = tk.fine_tune(_model(3), (x, y), strategy="feature_extractor", epochs=2, verbose=0,
                          callbacks=[made[name]()])  # fmt: skip
    assert result.cache.used
    assert len(result.history["loss"]) >= 1
    assert result.model.optimizer is not None  # compiled afresh, not the optimizer on loan
    if name == "ModelCheckpoint":  # it saved the full model, not the remainder
        saved = keras.saving.load_model(tmp_path / "m.keras")
        assert saved.count_params() == result.model.count_params()


def test_a_compiled_model_trains_with_a_copy_of_its_own_optimizer() -> None:
    x, y = _data(48, classes=3)
    model = _model(3)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    result = tk.fine_tune(model, (x, y), epochs=1, verbose=0)
    assert isinstance(result.model.optimizer, keras.optimizers.SGD)
    assert result.model.optimizer is not model.optimizer  # a fresh copy, never shared
    assert result.phases[0].learning_rate == pytest.approx(0.5)
    comparison = tk.compare_strategies(model, ["full"], train=(x, y), test=(x, y), epochs=1,
                                       verbose=0)  # fmt: skip
    assert comparison.config["optimizer"]["class_name"].endswith("SGD")
    assert comparison.runs[0].phases[0].learning_rate == pytest.approx(0.5)
    # an optimizer passed explicitly wins; an uncompiled model trains with Adam as before
    explicit = tk.fine_tune(model, (x, y), epochs=1, verbose=0, optimizer="adam")
    assert isinstance(explicit.model.optimizer, keras.optimizers.Adam)
    plain = tk.fine_tune(_model(3), (x, y), epochs=1, verbose=0)
    assert isinstance(plain.model.optimizer, keras.optimizers.Adam)


def _warnings_of(call) -> list[str]:
    """The messages of the UserWarnings transferkit raised during `call()`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_integer_pixels_into_a_model_that_does_not_rescale_warn() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(32, 8), dtype=np.uint8)
    y = np.arange(32) % 3
    messages = _warnings_of(lambda: tk.fine_tune(_model(3), (x, y), epochs=1, verbose=0))
    assert any(re.search(r"uint8 values up to 25\d.*`transferkit\.datasets\.normalize\(x\)`", m)
               for m in messages)  # fmt: skip
    inputs = keras.Input((8,))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(4)(scaled))
    tk.fine_tune(keras.Model(inputs, out), (x, y), epochs=1, verbose=0)  # no warning: errors
    tk.fine_tune(_model(3), (x.astype("float32") / 255, y), epochs=1, verbose=0)  # nor here


def test_few_labels_for_a_large_head_warn_with_the_replace_head_call() -> None:
    x, y = _data(40, classes=5)
    messages = _warnings_of(lambda: tk.fine_tune(_model(1000), (x, y), epochs=1, verbose=0))
    assert any(re.search(r"use 5 classes, but the model's head has 1000 units.*"
                         r"`model = replace_head\(model, 5\)`", m) for m in messages)  # fmt: skip
    tk.fine_tune(_model(10), (x, y), epochs=1, verbose=0)  # 5 of 10: a subset, no warning
