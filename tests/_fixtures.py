"""The suite's fixtures and helpers: the model zoo, fresh Keras state per test, snapshots.

`tests/conftest.py` registers this module as a plugin in each process that runs tests (not in
the pytest-xdist controller, which never imports a backend). The snapshot helpers are plain
functions so that tests (including hypothesis tests, which cannot use function-scoped fixtures
per example) can import them: `from _fixtures import ...`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

import transferkit as tk
from _optional import need
from transferkit import models

EXAMPLES_BACKEND = "torch"
"""The pass that runs the usage examples (docstring examples, unmarked docs blocks): once in
the matrix, in its quickest pass; the unit tests check behaviour on every backend."""

MOBILENET_NAME = "mobilenetv2_0.35_32"
"""Name Keras gives `MobileNetV2(alpha=0.35, input_shape=(32, 32, 3))`."""

MOBILENET_LEAVES = 155
"""Leaf layers of the MobileNetV2 wrapper: 153 backbone layers, the pooling and the classifier."""


# --------------------------------------------------------------------------- helpers


def weights_snapshot(model: Any) -> list[np.ndarray]:
    """Copies of all of `model`'s weights (trainable and not), as numpy arrays."""
    return [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in model.weights]


def flags_snapshot(model: Any) -> dict[str, Any]:
    """Every trainable flag of `model`: each layer (itself and nested ones) and each weight.

    Layers are listed parents before children (the order `TrainableState` uses), variables in
    `model.weights` order, so two snapshots compare equal iff every flag is the same.
    """
    layers: list[tuple[str, bool]] = []
    seen: set[int] = set()

    def visit(layer: Any, prefix: str) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        path = f"{prefix}{layer.name}"
        layers.append((path, bool(layer.trainable)))
        for sub in layer._flatten_layers(include_self=False, recursive=False):
            visit(sub, f"{path}/")

    visit(model, "")
    # `v.path` depends on the name scope the variable was built in (a clone's differs)
    variables = [(v.name, bool(v.trainable)) for v in model.weights]
    return {"layers": layers, "variables": variables}


def leaf_flags(model: Any) -> list[bool]:
    """The trainable flag of every leaf layer, in execution order."""
    return [bool(leaf.layer.trainable) for leaf in tk.leaf_layers(model)]


def assert_weights_equal(before: list[np.ndarray], after: list[np.ndarray]) -> None:
    """Every weight bit-identical (same count, shapes, dtypes and values)."""
    assert len(before) == len(after)
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        assert a.dtype == b.dtype, f"weight {i}: dtype {a.dtype} != {b.dtype}"
        assert np.array_equal(a, b), f"weight {i} changed"


def count(weights: Any) -> int:
    """Number of scalars in a list of variables."""
    return int(sum(int(np.prod(v.shape)) for v in weights))


def random_images(n: int, shape: tuple[int, ...], num_classes: int, seed: int = 0):
    """`n` random float32 images in [0, 1) and int labels in [0, num_classes)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, num_classes, size=n)
    return x, y


def fit_once(model: Any, x: np.ndarray, y: np.ndarray, *, run_eagerly: bool | None = None) -> None:
    """Compile (fresh optimizer) and run a real one-epoch fit on a tiny data set.

    By default eagerly on TensorFlow and PyTorch, which keeps MobileNetV2 fits under a second
    (tracing it costs ~6 s), and compiled on JAX, whose op-by-op mode compiles every operation
    on first use (a first MobileNetV2 fit took 33 s eagerly). The optimizer updates and
    BatchNormalization statistics are the same either way.
    """
    if run_eagerly is None:
        run_eagerly = keras.backend.backend() != "jax"
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        run_eagerly=run_eagerly,
    )
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)


# --------------------------------------------------------------------------- model builders


def build_lab_cnn() -> keras.Model:
    """The lab's Sequential CNN for 28x28x1 images (`transferkit.models.lab_cnn`)."""
    return models.lab_cnn()


def build_mobilenet_model() -> keras.Model:
    """Functional model wrapping a small, randomly initialised MobileNetV2 backbone."""
    backbone = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35
    )
    inputs = keras.Input((32, 32, 3), name="image")
    x = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="mobilenet_classifier")


def build_bn_model() -> keras.Model:
    """Small Functional CNN with two BatchNormalization layers (explicit names)."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU(name="relu_a")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv_b")(x)
    x = keras.layers.BatchNormalization(name="bn_b")(x)
    x = keras.layers.ReLU(name="relu_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="bn_model")


class SubclassedNet(keras.Model):
    """A subclassed model (no layer graph): Dense -> BatchNormalization -> Dense."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="relu", name="sub_hidden")
        self.norm = keras.layers.BatchNormalization(name="sub_bn")
        self.out = keras.layers.Dense(3, activation="softmax", name="sub_out")

    def call(self, inputs: Any, training: Any = None) -> Any:
        return self.out(self.norm(self.hidden(inputs), training=training))


def build_subclassed() -> keras.Model:
    model = SubclassedNet(name="subclassed")
    model(np.zeros((2, 4), dtype="float32"))  # builds it
    return model


def build_nested_sequential() -> keras.Model:
    """A Sequential model nested in a Sequential model."""
    inner = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu", name="inner_a"),
            keras.layers.Dense(4, activation="relu", name="inner_b"),
        ],
        name="inner",
    )
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(6, activation="relu", name="pre"),
            inner,
            keras.layers.Dense(3, activation="softmax", name="head"),
        ],
        name="outer",
    )


BUILDERS: dict[str, Callable[[], keras.Model]] = {
    "lab_cnn": build_lab_cnn,
    "mobilenet": build_mobilenet_model,
    "bn_model": build_bn_model,
    "subclassed": build_subclassed,
    "nested_sequential": build_nested_sequential,
}
"""Every model of the zoo by fixture name."""

LEAF_COUNTS = {
    "lab_cnn": 7,
    "mobilenet": MOBILENET_LEAVES,
    "bn_model": 8,
    "subclassed": 3,
    "nested_sequential": 4,
}


# --------------------------------------------------------------------------- fixtures


COMPILED = os.environ.get("TRANSFERKIT_TEST_COMPILED", "") == "1"
"""`TRANSFERKIT_TEST_COMPILED=1`: every test traces its TensorFlow functions, as users' code."""


def _set_compiled(compiled: bool) -> None:
    """On TensorFlow, trace `tf.function`s as users' code does, or run them eagerly.

    Tracing costs seconds per `compile()`, which most tests pay many times over for a few
    batches (the suite's TensorFlow pass took about twice as long), and the library code under
    test is the same either way. Tests marked `compiled`, and all of them with
    `TRANSFERKIT_TEST_COMPILED=1`, trace. JAX keeps XLA: its op-by-op mode measured no faster
    here. PyTorch runs eagerly anyway.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.run_functions_eagerly(not compiled)


def _share_jax_compilations(config: pytest.Config) -> None:
    """On JAX, reuse XLA executables across tests through JAX's persistent compilation cache.

    Many tests train the same small models on the same shapes; each new Keras model jits its
    train, test and predict functions afresh, which costs more than the few batches they run.
    The cache (a temporary directory, removed at exit) serves identical programs: measured
    184 s without it and 163 s with it for test_compare, test_heads and test_phases.
    """
    if keras.backend.backend() != "jax" or os.environ.get("TRANSFERKIT_TEST_JAX_CACHE") == "0":
        return
    import atexit
    import shutil
    import tempfile

    import jax

    cache_dir = tempfile.mkdtemp(prefix="transferkit-jax-cache-")
    atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_configure(config: pytest.Config) -> None:
    _set_compiled(COMPILED)  # before any fixture builds or trains a model
    _share_jax_compilations(config)


@pytest.fixture(autouse=True)
def _execution_mode(request: pytest.FixtureRequest) -> Any:
    """`@pytest.mark.compiled`: this test trains as users' code does."""
    if COMPILED or request.node.get_closest_marker("compiled") is None:
        yield
        return
    _set_compiled(True)
    try:
        yield
    finally:
        _set_compiled(False)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.backend("jax", reason=...)`: the test runs only in that backend's pass.
    `@pytest.mark.needs("keras_hub")`: it skips, naming what is missing (`tests/_optional.py`)."""
    marker = item.get_closest_marker("backend")
    if marker is not None and marker.args[0] != keras.backend.backend():
        reason = marker.kwargs.get("reason", "")
        pytest.skip(f"runs in the {marker.args[0]} pass of the backend matrix ({reason})")
    for marker in item.iter_markers("needs"):
        for name in marker.args:
            need(name)


def _clear_session() -> None:
    # `free_memory=True` (the default) runs a full `gc.collect()`, ~0.2 s per test.
    try:
        keras.utils.clear_session(free_memory=False)
    except TypeError:  # older Keras 3 without the argument
        keras.utils.clear_session()


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Fresh Keras state (layer-name counters restart, so default names are predictable)
    and a fixed seed (weights initialise the same way) for every test."""
    _clear_session()
    keras.utils.set_random_seed(0)


@pytest.fixture
def lab_cnn() -> keras.Model:
    return build_lab_cnn()


@pytest.fixture
def mobilenet_model(_shared_mobilenet: keras.Model) -> Any:
    """The run's one MobileNetV2 model, for tests that change its trainable flags (not its
    weights, and without compiling it): the flags are put back afterwards, checked."""
    yield from _restoring_flags(_shared_mobilenet)


@pytest.fixture(scope="session")
def _shared_mobilenet() -> keras.Model:
    # Its layers are all named explicitly, so building it outside a test's fresh session is safe.
    return build_mobilenet_model()


def _restoring_flags(model: keras.Model) -> Any:
    """Yield `model`; then restore every layer's and variable's trainable flag as it was."""
    flags, weights = flags_snapshot(model), weights_snapshot(model)
    layers: list[tuple[Any, bool]] = []  # parents before children: a parent's setter recurses

    def visit(layer: Any) -> None:
        layers.append((layer, bool(layer.trainable)))
        for sub in layer._flatten_layers(include_self=False, recursive=False):
            visit(sub)

    visit(model)
    variables = [(v, bool(v.trainable)) for v in model.weights]
    yield model
    for layer, flag in layers:
        layer.trainable = flag
    for v, flag in variables:
        v.trainable = flag
    assert flags_snapshot(model) == flags, "could not restore the shared model's flags"
    assert_weights_equal(weights, weights_snapshot(model))


@pytest.fixture
def mobilenet_readonly(_shared_mobilenet: keras.Model) -> Any:
    """One MobileNetV2 model for the whole run (a build costs seconds), for tests that only read
    it; afterwards, its trainable flags and weights must be exactly as before."""
    flags, weights = flags_snapshot(_shared_mobilenet), weights_snapshot(_shared_mobilenet)
    yield _shared_mobilenet
    assert flags_snapshot(_shared_mobilenet) == flags, "a test changed the shared model's flags"
    assert_weights_equal(weights, weights_snapshot(_shared_mobilenet))


@pytest.fixture
def bn_model() -> keras.Model:
    return build_bn_model()


@pytest.fixture
def subclassed_model() -> keras.Model:
    return build_subclassed()


@pytest.fixture
def nested_sequential() -> keras.Model:
    return build_nested_sequential()


@pytest.fixture(params=sorted(BUILDERS))
def zoo_model(request: pytest.FixtureRequest) -> Any:
    """Each model of the zoo in turn, as (name, model); MobileNetV2 is the run's shared one,
    whose flags are restored afterwards (tests may change flags, not weights)."""
    if request.param != "mobilenet":
        yield request.param, BUILDERS[request.param]()
        return
    for model in _restoring_flags(request.getfixturevalue("_shared_mobilenet")):
        yield request.param, model
