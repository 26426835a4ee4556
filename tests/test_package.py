"""Package-level behaviour: public names, typing marker, quiet and backend-neutral import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras

import transferkit


def test_all_names_exist_and_are_unique() -> None:
    assert len(set(transferkit.__all__)) == len(transferkit.__all__)
    for name in transferkit.__all__:
        assert hasattr(transferkit, name), name


def test_py_typed_marker_is_shipped() -> None:
    assert (Path(transferkit.__file__).parent / "py.typed").is_file()


def test_import_is_quiet_and_backend_neutral() -> None:
    """In a fresh process on this pass's backend, importing every public module prints nothing
    and, unless TensorFlow is the backend, imports no TensorFlow module. (Each backend's pass
    checks its own backend, so the CI matrix checks all three, one subprocess each.)"""
    backend = keras.backend.backend()
    code = (
        "import sys\n"
        "import transferkit, transferkit.datasets, transferkit.metrics, transferkit.models\n"
        "import transferkit.timing\n"
        "loaded = [m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')]\n"
        "sys.stderr.write(f'TF_MODULES {len(loaded)}')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""
    if backend != "tensorflow":
        assert "TF_MODULES 0" in proc.stderr, proc.stderr[-2000:]
