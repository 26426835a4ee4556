"""keras-hub image backbones and an `ImageClassifier` wrapping one, built with random weights.

Each tiny model is built once per module; tests that change a model work on `tk.copy_model` of
it or inside `tk.frozen` (which restores every flag), and check that the shared model is
unchanged. Two families with different layer structures: ResNet (a graph of plain Keras
layers with residual `Add`s) and MobileNet (composite blocks that are layers themselves).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

import transferkit as tk
from _fixtures import assert_weights_equal, count, flags_snapshot, random_images, weights_snapshot

try:
    import keras_hub
except ImportError:  # the `[hub]` extra; `needs` below skips every test, naming it
    keras_hub = None

# A keras-hub `ImageClassifier` compiles itself on construction (and so does its copy, which
# is rebuilt from its config), so every freeze of one warns; that warning is tested once below.
pytestmark = [
    pytest.mark.needs("keras_hub"),
    pytest.mark.filterwarnings("ignore::transferkit.RecompileWarning"),
]

SHAPE = (32, 32, 3)


def build_resnet() -> Any:
    # `stackwise_num_filters[0]` must be 64 in keras-hub; one block per stack keeps it tiny.
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=SHAPE,
        name="resnet",
    )


def build_mobilenet() -> Any:
    return keras_hub.models.MobileNetBackbone(
        stackwise_expansion=[[16], [24]],
        stackwise_num_blocks=[1, 1],
        stackwise_num_filters=[[16], [24]],
        stackwise_kernel_size=[[3], [3]],
        stackwise_num_strides=[[2], [2]],
        stackwise_se_ratio=[[None], [0.25]],
        stackwise_activation=[["relu"], ["hard_swish"]],
        stackwise_padding=[[1], [1]],
        output_num_filters=32,
        depthwise_filters=8,
        depthwise_stride=1,
        depthwise_residual=False,
        last_layer_filter=32,
        image_shape=SHAPE,
        name="mobilenet",
    )


# family -> (builder, leaf layers of the backbone, a stage boundary, the leaf right after it)
FAMILIES = {
    "resnet": (build_resnet, 23, "stack0_block0_out", "stack1_block0_1_pad"),
    "mobilenet": (build_mobilenet, 8, "block_1_0", "block_2_0"),
}


def classify(backbone: Any, num_classes: int = 3) -> Any:
    return keras_hub.models.ImageClassifier(
        backbone=backbone, num_classes=num_classes, preprocessor=None, name="classifier"
    )


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """(family name, `ImageClassifier` around a fresh tiny backbone), built once per module."""
    keras.utils.set_random_seed(0)
    return request.param, classify(FAMILIES[request.param][0]())


@pytest.fixture(scope="module")
def resnet_classifier() -> Any:
    keras.utils.set_random_seed(0)
    return classify(build_resnet())


def _fit(model: Any, x: np.ndarray, y: np.ndarray) -> None:
    """One real epoch. Eager is fastest for a tiny model, except on JAX (jit is)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=keras.backend.backend() != "jax",
    )
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)


def _weights_of(model: Any, paths: list[str]) -> list[np.ndarray]:
    by_path = {leaf.path: leaf.layer for leaf in tk.leaf_layers(model)}
    return [np.array(keras.ops.convert_to_numpy(w)) for p in paths for w in by_path[p].weights]


def test_leaf_layers_walk_into_the_backbone(family):
    name, clf = family
    _, n_backbone, boundary, _ = FAMILIES[name]
    leaves = tk.leaf_layers(clf)
    assert [leaf.path for leaf in leaves[-3:]] == ["pooler", "output_dropout", "predictions"]
    assert len(leaves) == n_backbone + 3
    assert leaves[0].containers == (clf.backbone,)
    assert f"{name}/{boundary}" in [leaf.path for leaf in leaves]


@pytest.mark.parametrize("form", ["name", "path", "layer"])
def test_named_boundaries_resolve_and_frozen_restores_flags(family, form):
    name, clf = family
    _, n_backbone, boundary, after = FAMILIES[name]
    upto = {
        "name": boundary,
        "path": f"{name}/{boundary}",
        "layer": clf.backbone.get_layer(boundary),
    }[form]
    before = flags_snapshot(clf)
    with tk.frozen(clf, upto=upto) as report:
        paths = [leaf.path for leaf in tk.leaf_layers(clf)]
        assert report.frozen == tuple(paths[: paths.index(f"{name}/{boundary}") + 1])
        assert report.trainable[0] == f"{name}/{after}"
        assert not clf.backbone.get_layer(boundary).trainable
        assert clf.backbone.get_layer(after).trainable
    assert flags_snapshot(clf) == before
    with tk.frozen(clf, upto=name) as report:  # the nested backbone's name: all its leaves
        assert report.boundary == n_backbone


@pytest.mark.parametrize(
    ("upto", "match"),
    [
        ("stack0_block_out", "Did you mean 'stack0_block0_out'"),
        ("resnet/stack9_block0_out", "No leaf layer named 'resnet/stack9_block0_out'"),
        (99, r"between -26 and 26 \(the model has 26 leaf layers\). Received: upto=99"),
    ],
)
def test_bad_boundaries_raise_before_any_flag_changes(resnet_classifier, upto, match):
    before = flags_snapshot(resnet_classifier)
    with pytest.raises(ValueError, match=match):
        tk.freeze(resnet_classifier, upto=upto)
    assert flags_snapshot(resnet_classifier) == before


def test_trainable_summary_counts(resnet_classifier):
    clf = resnet_classifier
    with tk.frozen(clf, upto="resnet"):
        summary = tk.trainable_summary(clf)
        trainable_rows = [row.path for row in summary.layers if row.trainable]
        assert trainable_rows == ["pooler", "output_dropout", "predictions"]
        assert summary.trainable_params == count(clf.trainable_weights) == 32 * 3 + 3
        assert summary.frozen_params + summary.trainable_params == clf.count_params()
        assert "resnet/stack0_block0_out" in str(summary)


@pytest.mark.compiled  # eager TF: "Gradients for grouped convolutions are not supported on CPU"
def test_frozen_part_is_bit_identical_after_fit_and_bn_runs_in_inference(family):
    name, clf = family
    _, _, boundary, _ = FAMILIES[name]
    original = weights_snapshot(clf)
    model = tk.copy_model(clf)
    report = tk.freeze(model, upto=boundary)
    frozen_before = _weights_of(model, list(report.frozen))
    trainable_before = _weights_of(model, list(report.trainable))
    x, _ = random_images(16, SHAPE, 3)
    _fit(model, x, np.arange(16) % 3)
    # frozen weights and BatchNormalization statistics (the stem's BN is frozen) unchanged
    assert_weights_equal(frozen_before, _weights_of(model, list(report.frozen)))
    trainable_after = _weights_of(model, list(report.trainable))
    pairs = zip(trainable_before, trainable_after, strict=True)
    assert any(not np.array_equal(a, b) for a, b in pairs)
    # the model the copy came from is untouched
    assert_weights_equal(original, weights_snapshot(clf))


def test_freezing_a_classifier_as_built_asks_for_a_recompile(resnet_classifier):
    assert resnet_classifier.compiled  # keras-hub compiles tasks on construction
    with pytest.warns(tk.RecompileWarning, match="compile"):
        with tk.frozen(resnet_classifier):
            pass


def test_copy_keeps_the_keras_hub_class_and_is_independent(resnet_classifier):
    clf = resnet_classifier
    twin = tk.copy_model(clf)
    assert type(twin) is type(clf) and type(twin.backbone) is type(clf.backbone)
    assert not {id(v) for v in twin.weights} & {id(v) for v in clf.weights}
    # (the rebuilt input layer gets a new default name; every flag is the same)
    assert [f for _, f in flags_snapshot(twin)["layers"]] == [
        f for _, f in flags_snapshot(clf)["layers"]
    ]
    x, _ = random_images(4, SHAPE, 3)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(twin(x)), keras.ops.convert_to_numpy(clf(x))
    )


def test_mixed_precision_copy_is_a_functional_model_with_the_same_weights(resnet_classifier):
    clf = resnet_classifier
    twin = tk.copy_model(clf, dtype_policy="mixed_bfloat16")
    assert twin.get_layer("resnet").get_layer("conv1_conv").dtype_policy.name == "mixed_bfloat16"
    assert twin.get_layer("predictions").dtype_policy.name == "float32"  # the output layer
    assert_weights_equal(weights_snapshot(clf), weights_snapshot(twin))


def test_feature_extractor_and_new_head_leave_the_model_alone(resnet_classifier):
    clf = resnet_classifier
    flags, weights = flags_snapshot(clf), weights_snapshot(clf)
    x, _ = random_images(4, SHAPE, 3)

    extractor = tk.as_feature_extractor(clf.backbone, pooling="avg")
    assert extractor.output_shape == (None, 32) and not extractor.trainable_weights
    expected = keras.ops.mean(clf.backbone(x), axis=(1, 2))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(extractor(x)), keras.ops.convert_to_numpy(expected), atol=1e-5
    )
    new = tk.replace_head(clf, 5, cut="stack0_block0_out", hidden=(8,))
    assert new.output_shape == (None, 5)
    assert tk.leaf_layers(new)[-1].path == "head_classifier"
    assert flags_snapshot(clf) == flags and clf.output_shape == (None, 3)
    assert_weights_equal(weights, weights_snapshot(clf))


def test_feature_extractor_strategy_trains_the_head_on_cached_features(resnet_classifier):
    clf = resnet_classifier
    x, y = random_images(32, SHAPE, 3)
    result = tk.fine_tune(clf, (x, y), strategy="feature_extractor", epochs=1, seed=0, verbose=0)
    # the cache covers the backbone, the pooler and the zero-rate dropout of the classifier
    assert result.cache.used and result.cache.prefix_layers == 3
    assert result.cache.feature_shape == (32,)
    trained = result.model
    assert type(trained) is type(clf)
    assert_weights_equal(weights_snapshot(clf.backbone), weights_snapshot(trained.backbone))
    assert not np.array_equal(
        keras.ops.convert_to_numpy(trained.get_layer("predictions").kernel),
        keras.ops.convert_to_numpy(clf.get_layer("predictions").kernel),
    )


def test_compare_strategies_runs_every_strategy():
    # One residual stage: the smallest ResNet keras-hub builds, so tracing `fit` stays cheap.
    body = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64],
        stackwise_num_blocks=[1],
        stackwise_num_strides=[1],
        block_type="basic_block",
        image_shape=SHAPE,
        name="resnet",
    )
    clf = classify(body)
    flags, weights = flags_snapshot(clf), weights_snapshot(clf)
    x, y = random_images(32, SHAPE, 3)
    partial = tk.PartialFreeze(upto="pool1_pool")  # the stem
    strategies = [partial, "feature_extractor"]
    comparison = tk.compare_strategies(
        clf, strategies, train=(x, y), validation=None, test=(x, y), epochs=1, verbose=0,
        seeds=2, batch_size=8,
    )  # fmt: skip
    assert comparison.strategies == (partial.name, "feature_extractor")
    runs = {s: comparison.runs_of(s)[0] for s in comparison.strategies}
    params = {s: run.timing.trainable_params for s, run in runs.items()}
    assert sum(w.size for w in weights) > params[partial.name] > params["feature_extractor"]
    assert params["feature_extractor"] == 64 * 3 + 3
    assert runs["feature_extractor"].cache.used and not runs[partial.name].cache.used
    # keras-hub's own `fit` ignores `shuffle`: transferkit trains through a Functional view,
    # so the seed changes the batch order (and the spread over seeds is real)
    one, two = comparison.runs_of(partial.name)
    assert one.history["loss"] != two.history["loss"]
    assert flags_snapshot(clf) == flags
    assert_weights_equal(weights, weights_snapshot(clf))


def test_recipes_run_on_an_image_classifier(resnet_classifier):
    clf = resnet_classifier
    flags, weights = flags_snapshot(clf), weights_snapshot(clf)
    x, y = random_images(24, SHAPE, 3)
    comparison = tk.compare_strategies(
        clf, ["scratch", "lp_ft", "gradual"], train=(x, y), validation=None, test=(x, y),
        epochs=3, batch_size=12, verbose=0,
    )  # fmt: skip
    phases = {run.strategy: [(p.name, p.cache.used) for p in run.phases]
              for run in comparison.runs}  # fmt: skip
    assert phases["scratch"] == [("phase0", False)]
    assert phases["lp_ft(probe_epochs=1)"] == [("probe", True), ("fine_tune", False)]
    assert phases["gradual(every=1)"][0] == ("head", True)  # the head trains on cached features
    assert len(phases["gradual(every=1)"]) >= 2
    assert flags_snapshot(clf) == flags
    assert_weights_equal(weights, weights_snapshot(clf))
