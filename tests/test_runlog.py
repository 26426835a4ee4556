"""The `output=` log under faults: a writer killed mid-record, a full disk, an unwritable or
corrupted file, other tools' files. No byte of the user's is ever lost."""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import warnings

import keras
import pytest

import transferkit as tk
from _train_helpers import TrainingProbe, blobs, mlp, split


def data():
    x, y = blobs(96)
    return split(x, y, 64, 32)


def compare(model, path, probe=None, **kwargs):
    train, test = data()
    args = dict(train=train, validation=None, test=test, epochs=1, verbose=0, output=path)
    args.update({"callbacks": [probe or TrainingProbe()], **kwargs})
    return tk.compare_strategies(model, args.pop("strategies", ["full"]), **args)


def lines(path):
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def warned(caught, pattern):
    """Whether `caught` holds a UserWarning matching `pattern` (the log's "moved aside")."""
    return any(
        issubclass(w.category, UserWarning) and re.search(pattern, str(w.message)) for w in caught
    )


def aside(path):
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


@pytest.mark.parametrize(
    "content",
    [
        b"my experiment notes, no trailing newline",
        b'{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}',  # another tool's JSONL
        b'{"step": 1}\n',
        b"\x00\xff\xfe garbage \x80\n\x81",
        b"\n\n",
    ],
    ids=["notes", "other_jsonl_tail", "other_jsonl", "binary", "blank_lines"],
)
def test_a_file_that_is_not_a_transferkit_log_keeps_every_byte(tmp_path, content):
    path = tmp_path / "user_file.txt"
    path.write_bytes(content)
    probe = TrainingProbe()
    with pytest.raises(ValueError, match="not a transferkit comparison log.*not modified"):
        compare(mlp(), path, probe)
    assert path.read_bytes() == content and probe.fits == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user_file.txt"]


def test_a_different_configuration_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "runs.jsonl"
    model = mlp()
    compare(model, path, optimizer=keras.optimizers.SGD(learning_rate=0.1))
    content = path.read_bytes()
    probe = TrainingProbe()
    changes = [
        ({"optimizer": keras.optimizers.SGD(learning_rate=0.2)},
         "optimizer.config.learning_rate: 0.1"),
        ({"optimizer": keras.optimizers.SGD(0.1), "loss": "categorical_focal_crossentropy"},
         'loss: null in the file, "categorical_focal_crossentropy" now'),
        ({"optimizer": keras.optimizers.SGD(0.1), "batch_size": 8},
         "batch_size: 32 in the file, 8 now"),
        ({"optimizer": keras.optimizers.SGD(0.1),
          "callbacks": [keras.callbacks.EarlyStopping(patience=5)]}, "callbacks: "),
        ({"optimizer": keras.optimizers.SGD(0.1), "test": (data()[1][0] * 2, data()[1][1])},
         "hashes.test: "),
    ]  # fmt: skip
    for change, field in changes:
        with pytest.raises(ValueError, match=f"Fields that differ: {re.escape(field)}"):
            compare(model, path, probe, **change)
    assert probe.fits == 0 and path.read_bytes() == content
    # The same configuration, with a fresh but equal optimizer, resumes.
    resumed = compare(model, path, probe, optimizer=keras.optimizers.SGD(learning_rate=0.1))
    assert probe.fits == 0 and resumed.runs[0].resumed


KILLED_WRITER = """
import json, os, signal, sys
from transferkit import RunRecord
from transferkit.comparison import _runlog

path = sys.argv[1]
header, run = (json.loads(line) for line in open(path, "rb").read().splitlines())
hashes = header.pop("hashes")
config = {k: v for k, v in header.items() if k not in ("kind", "format", "fingerprint")}
log, done = _runlog.RunLog.open(path, config, hashes)  # verified as this configuration's log
assert len(done) == 1
real_write = os.write


def dying_write(fd, data):  # half of the record reaches the disk, then the process dies
    real_write(fd, data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)


os.write = dying_write
log.append(RunRecord.from_dict({**run, "seed": 1}))
"""


def test_a_writer_killed_mid_record_loses_nothing(tmp_path):
    """A process is SIGKILLed halfway through appending a record to a verified log."""
    path = tmp_path / "runs.jsonl"
    model = mlp()
    compare(model, path)
    whole = path.read_bytes()
    # The writer needs no training, so it runs on Keras's light NumPy backend, which imports
    # JAX; without JAX (the README's `[test]` install) it runs on this pass's backend.
    backend = "numpy" if importlib.util.find_spec("jax") else keras.backend.backend()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "KERAS_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path)], env=env, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    raw = path.read_bytes()
    tail = raw[len(whole) :]
    assert raw.startswith(whole) and tail and b"\n" not in tail

    probe = TrainingProbe()
    # Not `pytest.warns`: it would re-raise the backends' own deprecation noise as errors.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        comparison = compare(model, path, probe, seeds=2)
    assert warned(caught, "incomplete record.*moved to")
    assert probe.fits == 1  # only the run whose record was cut off
    assert [run.resumed for run in comparison.runs] == [True, False]
    (damaged,) = aside(path)
    assert damaged.read_bytes() == tail  # the cut-off bytes are kept, not deleted
    assert path.read_bytes().startswith(whole)
    assert [(e["kind"], e.get("seed")) for e in lines(path)] == [
        ("header", None),
        ("run", 0),
        ("run", 1),
    ]


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE stands in for a full disk")
def test_a_full_disk_mid_comparison_keeps_the_finished_runs(tmp_path):
    """RLIMIT_FSIZE makes writes past a size fail (EFBIG), as a full disk would."""
    import resource

    path = tmp_path / "runs.jsonl"
    model = mlp()
    compare(model, path)
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, hard))
    try:
        with pytest.raises(OSError, match="Could not append run.*Runs recorded before are kept"):
            compare(model, path, seeds=2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert path.read_bytes()[: len(before)] == before
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = compare(model, path, seeds=2)
    assert warned(caught, "100 bytes.*moved to")
    assert [run.resumed for run in resumed.runs] == [True, False]
    assert len(aside(path)) == 1 and len(aside(path)[0].read_bytes()) == 100


def test_an_unwritable_output_is_refused_before_training(tmp_path):
    probe = TrainingProbe()
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="does not exist"):
        compare(mlp(), blocker / "runs.jsonl", probe)
    with pytest.raises(ValueError, match="not a regular file"):
        compare(mlp(), tmp_path, probe)
    assert probe.fits == 0 and blocker.read_bytes() == b"keep me"


CAP_DAC_OVERRIDE = 1
"""The Linux capability that lets root write whatever the file modes say (capability.h)."""


@contextlib.contextmanager
def modes_apply_to_this_thread():
    """File modes bind this thread, as root too: root gives up `CAP_DAC_OVERRIDE`.

    The capability leaves the thread's effective set only (`capset(2)` is per thread, and it
    stays permitted), so the exit restores it. As a non-root user modes apply anyway. Skips
    where root's override cannot be given up: outside Linux."""
    if os.geteuid() != 0:
        yield
        return
    if not sys.platform.startswith("linux"):
        pytest.skip("root ignores file modes; giving up CAP_DAC_OVERRIDE needs Linux")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3

    def capset(effective):
        data[0].effective = effective
        if libc.capset(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), "capset failed")

    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    effective = data[0].effective
    capset(effective & ~(1 << CAP_DAC_OVERRIDE))
    try:
        yield
    finally:
        capset(effective)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_read_only_log_or_directory_is_refused_before_training(tmp_path):
    """Runs as root too (CI is root): root gives up its override of file modes meanwhile."""
    path = tmp_path / "runs.jsonl"
    compare(mlp(), path)
    content = path.read_bytes()
    probe = TrainingProbe()
    path.chmod(0o444)
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with modes_apply_to_this_thread():
        with pytest.raises(ValueError, match=r"cannot be written \(Permission denied\)"):
            compare(mlp(), path, probe, seeds=2)
        with pytest.raises(ValueError, match=r"cannot be written \(Permission denied\)"):
            compare(mlp(), folder / "runs.jsonl", probe)
    assert probe.fits == 0 and path.read_bytes() == content and not list(folder.iterdir())


def test_a_corrupted_record_is_refused_with_its_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    model = mlp()
    compare(model, path, seeds=2)
    raw = path.read_bytes().splitlines(keepends=True)
    corrupted = raw[0] + b'{"kind": "run", "strategy": "full"}\n' + raw[2]
    path.write_bytes(corrupted)
    probe = TrainingProbe()
    with pytest.raises(ValueError, match="damaged: line 2 is not a complete run record"):
        compare(model, path, probe, seeds=2)
    assert probe.fits == 0 and path.read_bytes() == corrupted and not aside(path)


def test_non_array_data_need_a_declared_identity(tmp_path):
    tf = pytest.importorskip("tensorflow")
    (x, y), test = data()
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    path = tmp_path / "runs.jsonl"
    with pytest.raises(ValueError, match="`train` is not an `\\(x, y\\)` pair.*data_id"):
        compare(mlp(), path, train=train)
    assert not path.exists()
    model = mlp()
    compare(model, path, train=train, data_id="blobs-v1")
    with pytest.raises(ValueError, match="Fields that differ: hashes.data_id"):
        compare(model, path, train=train, data_id="blobs-v2")
    assert compare(model, path, train=train, data_id="blobs-v1").runs[0].resumed
    # `data_id` names only the data it stands for: the test arrays are still hashed.
    content, probe = path.read_bytes(), TrainingProbe()
    changed = (test[0] + 1.0, test[1])
    with pytest.raises(
        ValueError, match=r"Fields that differ: hashes\.test: \S+ in the file, \S+ now\."
    ):
        compare(model, path, probe, train=train, data_id="blobs-v1", test=changed)
    assert probe.fits == 0 and path.read_bytes() == content
