"""What the suite can use but the README's test command does not install, and how to get it.

The README's test command installs the `[test]` extra only and runs the TensorFlow pass. A test
that needs more (keras-hub, JAX, PyTorch, TensorBoard, Chromium) is marked
`@pytest.mark.needs("keras_hub")` (a module: importable; a program: on PATH); where it is
missing the test skips, naming it and how to install it (`tests/_fixtures.py`). `-m needs`
selects exactly these tests.

`TRANSFERKIT_TEST_REQUIRE` (names separated by spaces or commas; `.ci/run` sets it once it has
installed them) makes a missing one fail its tests instead, so that CI cannot pass on skips.
This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

OPTIONAL = {
    "jax": ("module", 'pip install -e ".[jax]"'),
    "torch": ("module", 'pip install -e ".[torch]"'),
    "keras_hub": ("module", 'pip install -e ".[hub]"'),
    "tensorboard": ("module", 'pip install -e ".[dev]"'),
    "distributed": ("module", 'pip install -e ".[dask]"'),
    "chromium": ("program", "apt-get install chromium"),
}
"""Each optional dependency: whether it is a Python module or a program, and how to get it."""


def required() -> set[str]:
    """The names in `TRANSFERKIT_TEST_REQUIRE`: missing, they fail their tests."""
    return set(os.environ.get("TRANSFERKIT_TEST_REQUIRE", "").replace(",", " ").split())


def available(name: str) -> bool:
    kind, _ = OPTIONAL[name]
    if kind == "module":
        return importlib.util.find_spec(name) is not None
    return shutil.which(name) is not None


def need(name: str) -> None:
    """Skip the running test unless `name` is available (fail instead where it is required)."""
    if name not in OPTIONAL:
        raise ValueError(f"unknown optional dependency {name!r}; known: {sorted(OPTIONAL)}")
    if available(name):
        return
    _, how = OPTIONAL[name]
    if name in required():
        pytest.fail(f"needs {name}, which TRANSFERKIT_TEST_REQUIRE requires: {how}")
    pytest.skip(f"needs {name}, which is not installed: {how}")
