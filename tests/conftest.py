"""Test-run setup that imports no Keras backend; the fixtures live in `tests/_fixtures.py`.

With pytest-xdist (`-n auto`, pyproject's addopts) this module also loads in the controller,
which only hands tests to the workers: importing a backend there cost each pass 7-11 s before
any worker started. So the fixtures plugin is registered only where tests run.
"""

from __future__ import annotations

import os

import pytest

if os.environ.get("KERAS_BACKEND") == "jax" and "optimization_level" not in os.environ.get(
    "XLA_FLAGS", ""
):
    # Before JAX starts (workers inherit it): XLA compiles each test's few-batch programs with
    # LLVM's cheap pipeline and its older loop emitters for fusions. Compiling, not running,
    # is most of the JAX pass: -O0 took it from 410 s to 330 s (2 workers), and the loop
    # emitters compile a MobileNetV2 train step in 11 s instead of 16 s. The same flags hold
    # for every side a test compares.
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
    ).strip()


MAX_WORKERS = 4
"""`-n auto` (pyproject's addopts) starts one pytest-xdist worker per core, at most this many:
each worker imports the backend (about 1-2 GiB) and its kernels already use every core. On a
2-core machine two workers took the TensorFlow pass from 346 s to 232 s and JAX from 539 s to
410 s (the suite is mostly single-threaded Python and XLA compilation)."""


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own, which starts the controller's session
def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("dsession"):
        config.pluginmanager.import_plugin("_fixtures")
