"""Package-level behaviour: public names, typing marker, quiet and backend-neutral import."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import transferkit


def test_all_names_exist_and_are_unique() -> None:
    assert len(set(transferkit.__all__)) == len(transferkit.__all__)
    for name in transferkit.__all__:
        assert hasattr(transferkit, name), name


def test_py_typed_marker_is_shipped() -> None:
    assert (Path(transferkit.__file__).parent / "py.typed").is_file()


def _import_in_subprocess(backend: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        "import transferkit, transferkit.datasets, transferkit.metrics, transferkit.models\n"
        "import transferkit.timing\n"
        "loaded = sorted(m for m in sys.modules if m == 'tensorflow' or "
        "m.startswith('tensorflow.'))\n"
        "print('TF_MODULES', len(loaded))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_import_does_not_import_tensorflow_on_other_backends(backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    proc = _import_in_subprocess(backend)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TF_MODULES 0" in proc.stdout, proc.stdout


def test_import_prints_nothing() -> None:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    code = "import transferkit"
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""
