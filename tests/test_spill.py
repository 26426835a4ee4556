"""A cache over its memory budget: spilled to a disk-backed array, streamed, cleaned up."""

from __future__ import annotations

import hashlib
import os
import tempfile

import numpy as np
import pytest

import transferkit as tk
from _train_helpers import TrainingProbe, images, split, tiny_cnn, weights_of
from transferkit import FeatureCache, FeatureExtractor
from transferkit._chunks import count_nonfinite, hash_arrays, release_pages, row_chunks
from transferkit._serial import content_hash
from transferkit.training._spill import FeatureStream

CLOSE = {"rtol": 1e-4, "atol": 1e-6}


def _data(n: int = 48):
    x, y = images(n + 16)
    return split(x, y, n, 16)


def _run(train, validation, cache, *, batch_size: int, seed: int = 0, callbacks=(), model=None):
    return tk.fine_tune(
        model or tiny_cnn(), train, validation=validation,
        strategy=FeatureExtractor(cut="flatten"), epochs=2, batch_size=batch_size, seed=seed,
        verbose=0, cache=cache, callbacks=list(callbacks),
    )  # fmt: skip


@pytest.fixture
def own_temp(tmp_path, monkeypatch):
    """The system's temporary directory is `tmp_path`, and the default budget is zero."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(tk.training._cache, "available_memory", lambda: 0)
    return tmp_path


# --------------------------------------------------------------------------- same training


def test_spilled_run_trains_like_the_in_memory_cache(tmp_path):
    train, validation = _data()
    # One batch per epoch: the batch order is then the same for both (all samples at once).
    model = tiny_cnn()
    memory = _run(train, validation, True, batch_size=64, model=model)
    with FeatureCache(budget_bytes=0, cache_dir=tmp_path) as store:
        disk = _run(train, validation, store, batch_size=64, model=model)
        features = store.entries[next(iter(store.entries))]
        # Held on disk, not in RAM: memmaps of .npy files in a directory inside `cache_dir`.
        assert all(isinstance(a, np.memmap) for a in features.values())
        assert store.nbytes == 0
        spilled = os.path.dirname(disk.cache.path)
        assert sum(os.path.getsize(f"{spilled}/{f}") for f in os.listdir(spilled)) >= 16384
    assert memory.cache.used and memory.cache.location == "memory" and memory.cache.path is None
    assert disk.cache.used and disk.cache.location == "disk"
    assert os.path.dirname(os.path.dirname(disk.cache.path)) == str(tmp_path)
    assert (
        "written to" in disk.cache.reason and "over the cache's memory budget" in disk.cache.reason
    )
    assert disk.cache.nbytes == memory.cache.nbytes == 64 * 64 * 4  # 4x4x4 features, float32
    assert disk.cache.to_dict()["location"] == "disk"
    assert set(disk.history) == set(memory.history)
    for key in memory.history:
        assert np.allclose(disk.history[key], memory.history[key], **CLOSE), key
    for a, b in zip(weights_of(disk.model), weights_of(memory.model), strict=True):
        assert np.allclose(a, b, **CLOSE)
    assert os.listdir(tmp_path) == []  # closing the store deleted the spilled files


def test_spilled_batches_are_shuffled_from_the_seed(tmp_path):
    train, validation = _data()
    model = tiny_cnn()
    with FeatureCache(budget_bytes=0, cache_dir=tmp_path) as store:
        runs = [_run(train, validation, store, batch_size=8, model=model) for _ in range(2)]
    memory = _run(train, validation, False, batch_size=8, model=model)
    assert all(r.cache.location == "disk" for r in runs) and runs[1].cache.shared
    pairs = zip(weights_of(runs[0].model), weights_of(runs[1].model), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)  # reproducible from the seed
    assert runs[0].history == runs[1].history
    # Another order than Keras's in-memory shuffle, the same training: close first-epoch loss.
    assert runs[0].history["loss"][0] == pytest.approx(memory.history["loss"][0], rel=0.05)
    assert runs[0].history["val_loss"][0] == pytest.approx(memory.history["val_loss"][0], rel=0.05)


def test_feature_stream_order(tmp_path):
    features = np.lib.format.open_memmap(tmp_path / "f.npy", "w+", np.float32, (10, 2))
    features[:] = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.arange(10)
    stream = FeatureStream(features, labels, batch_size=4, seed=3)
    assert len(stream) == 3
    epochs = []
    for _ in range(2):
        batches = [stream[i] for i in range(len(stream))]
        rows = np.concatenate([y for _, y in batches])
        assert sorted(rows) == list(range(10))  # every sample once per epoch
        assert all(np.all(np.diff(y) > 0) for _, y in batches)  # ascending rows in a batch
        assert all(np.array_equal(x[:, 0], 2 * y) for x, y in batches)  # rows match labels
        assert not isinstance(batches[0][0], np.memmap)  # copied out of the mapping
        epochs.append(rows)
        stream.on_epoch_end()
    assert not np.array_equal(*epochs)  # a fresh order per epoch
    again = FeatureStream(features, labels, batch_size=4, seed=3)
    assert np.array_equal(np.concatenate([again[i][1] for i in range(3)]), epochs[0])
    ordered = FeatureStream(features, labels, batch_size=4, seed=None)
    assert np.array_equal(np.concatenate([ordered[i][1] for i in range(3)]), labels)


# --------------------------------------------------------------------------- cleanup


def test_run_deletes_its_spilled_files_after_the_run_and_after_an_error(own_temp):
    train, validation = _data()
    result = _run(train, validation, True, batch_size=16)  # fine_tune's own cache
    assert result.cache.location == "disk" and str(own_temp) in result.cache.path
    assert os.listdir(own_temp) == []
    with pytest.raises(KeyboardInterrupt, match="simulated"):
        _run(train, validation, True, batch_size=16, callbacks=[TrainingProbe(1)])
    assert os.listdir(own_temp) == []


def test_user_cache_keeps_files_until_closed_even_on_error(tmp_path):
    train, validation = _data()
    with pytest.raises(KeyboardInterrupt):
        with FeatureCache(budget_bytes=0, cache_dir=tmp_path) as store:
            _run(train, validation, store, batch_size=16)
            assert len(os.listdir(next(tmp_path.iterdir()))) == 2  # train and validation
            _run(train, validation, store, batch_size=16, callbacks=[TrainingProbe(1)])
    assert os.listdir(tmp_path) == [] and store.entries == {}


def test_compare_strategies_spills_and_cleans_up(own_temp):
    train, validation = _data()
    x, y = images(16, seed=1)
    comparison = tk.compare_strategies(
        tiny_cnn(), [FeatureExtractor(cut="flatten")], train=train, validation=validation,
        test=(x, y), epochs=1, batch_size=16, verbose=0,
    )  # fmt: skip
    assert comparison.runs[0].cache.location == "disk"
    assert os.listdir(own_temp) == []


# --------------------------------------------------------------------------- large inputs


def test_memmap_input_trains_without_a_copy_and_hashes_like_an_array(tmp_path):
    train, validation = _data()
    path = tmp_path / "x.npy"
    np.save(path, train[0])
    x = np.load(path, mmap_mode="r")
    assert isinstance(x, np.memmap)
    assert content_hash([x]) == content_hash([train[0]])
    h1, h2 = hashlib.sha256(), hashlib.sha256()
    hash_arrays(h1, [x[:, :4]])  # not contiguous: hashed like its contiguous copy
    hash_arrays(h2, [np.ascontiguousarray(train[0][:, :4])])
    assert h1.hexdigest() == h2.hexdigest()
    model = tiny_cnn()
    with FeatureCache(budget_bytes=0, cache_dir=tmp_path) as store:
        mapped = _run((x, train[1]), validation, store, batch_size=16, model=model)
    with FeatureCache(budget_bytes=0, cache_dir=tmp_path) as store:
        plain = _run(train, validation, store, batch_size=16, model=model)
    for a, b in zip(weights_of(mapped.model), weights_of(plain.model), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(np.load(path), train[0])  # the input file is unchanged


def test_nonfinite_inputs_are_counted_in_chunks(tmp_path):
    x = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float32, (100, 3))
    x[:] = 1.0
    x[7, 1], x[93, 0] = np.nan, np.inf
    assert [s.stop - s.start for s in row_chunks(x, 40 * 12)] == [40, 40, 20]
    assert count_nonfinite(x) == 2
    model = tiny_cnn()
    bad = np.lib.format.open_memmap(tmp_path / "b.npy", "w+", np.float32, (8, 8, 8, 1))
    bad[:] = 0.5
    bad[3, 2, 2, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        tk.fine_tune(model, (bad, np.zeros(8, int)), epochs=1, verbose=0)


def test_release_pages_keeps_the_data(tmp_path):
    shared = np.lib.format.open_memmap(tmp_path / "s.npy", "w+", np.float32, (1000,))
    shared[:] = 2.0
    release_pages(shared)  # shared mapping: the pages go back to the page cache, data stay
    assert np.all(shared == 2.0)
    private = np.load(tmp_path / "s.npy", mmap_mode="c")
    private[:] = 5.0  # copy-on-write changes exist only in this process's pages
    release_pages(np.asarray(private))
    assert np.all(private == 5.0)
    release_pages(np.ones(3))  # an in-memory array: nothing to do


# --------------------------------------------------------------------------- bad cache_dir


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: p / "missing", ValueError, "existing directory.*does not exist"),
        (lambda p: (p / "file").write_text("x") and p / "file", ValueError, "it is a file"),
        (lambda p: 42, TypeError, "`cache_dir` must be a path.*Received: cache_dir=42"),
    ],
    ids=["missing", "file", "not_a_path"],
)
def test_bad_cache_dir_is_refused(tmp_path, make, error, match):
    with pytest.raises(error, match=match):
        FeatureCache(budget_bytes=0, cache_dir=make(tmp_path))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and /proc")
def test_read_only_cache_dir_is_refused_before_training(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # Root writes through permission bits; nobody creates files in /proc.
    target = "/proc" if os.geteuid() == 0 else locked
    try:
        with pytest.raises(ValueError, match="can write to.*not writable"):
            FeatureCache(cache_dir=target)
    finally:
        locked.chmod(0o700)
