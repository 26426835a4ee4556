"""The runs of a comparison on an executor: local spawned processes, or a Dask cluster."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.thread import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import keras

from .._validate import check_choice
from ..training._cache import FeatureCache
from ..training._settings import TrainSettings
from ..types import Model
from ._models import savable
from ._progress import RunProgress
from ._records import RunKey, RunRecord
from ._runner import ComparisonPlan, Job, train_job


class RunsFailed(RuntimeError):
    """Runs of a comparison that failed on an executor's workers, each tried twice.

    The runs that finished before are in the `output=` log, whole: `compare_strategies`
    with the same `output` trains only the failed ones again.

    Args:
        failures: `{run key: the error}`, the key `(strategy label, seed, rate, rung)`;
            a worker that died shows as `BrokenProcessPool` (or Dask's `KilledWorker`).
            Kept as the `failures` attribute.

    Example:
    ```python
    from transferkit import RunsFailed

    error = RunsFailed({("full", 0, None, None): MemoryError("worker out of memory")})
    assert list(error.failures) == [("full", 0, None, None)]
    print(error)  # names each run and its error
    ```
    """

    def __init__(self, failures: dict[RunKey, BaseException]) -> None:
        self.failures = failures
        lines = "".join(f"\n  {key}: {error!r}" for key, error in failures.items())
        super().__init__(
            f"{len(failures)} run(s) failed twice on the executor's workers; the finished "
            f"runs are in the `output=` log, and a rerun with it trains only these:{lines}"
        )


def check_executor(executor: Any) -> Any:
    """`executor` as `compare_strategies` takes it: `None`, `"processes"`, an `Executor`, or
    a Dask `Client` (duck-typed: it has `get_executor`); not threads."""
    if isinstance(executor, ThreadPoolExecutor):
        raise ValueError(
            "`executor` must use processes: threads share Keras's global random state, so runs "
            'would not be reproducible. Use "processes" or a `ProcessPoolExecutor`.'
        )
    if executor is None or isinstance(executor, Executor) or hasattr(executor, "get_executor"):
        return executor
    if isinstance(executor, str):
        return check_choice(executor, "executor", ("processes",))
    raise TypeError(
        '`executor` must be None, "processes", a `concurrent.futures.Executor` or a Dask '
        f"`Client`. Received: {type(executor).__name__}"
    )


def one_thread() -> None:
    """Runs in each worker of `executor="processes"` before its first run: one intra-op
    thread, so that the workers share the cores instead of each taking all of them."""
    os.environ.update(OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    if keras.backend.backend() == "torch":
        import torch  # only reached on the PyTorch backend

        torch.set_num_threads(1)
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # only reached on the TensorFlow backend

        with contextlib.suppress(RuntimeError):  # already started: it keeps its threads
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)


_WORKER: dict[str, Any] = {}
"""This worker process's comparison: its token, plan and settings (with its own cache)."""


def remote_job(blob: bytes, token: str, job: Job, keep: bool) -> tuple[RunRecord, bytes | None]:
    """In a worker: train `job` of comparison `token`. The plan is unpickled, and a cache
    made, once per worker and comparison, so the worker's runs share frozen activations."""
    if _WORKER.get("token") != token:
        if isinstance(getattr(_WORKER.get("settings"), "cache", None), FeatureCache):
            _WORKER["settings"].cache.close()  # the last comparison's activations
        plan, settings = pickle.loads(blob)
        cache = FeatureCache() if settings.cache is True else settings.cache
        _WORKER.update(token=token, plan=plan, settings=replace(settings, cache=cache))
    record, model = train_job(_WORKER["plan"], _WORKER["settings"], job)
    # Pickled here by Keras (as a `.keras` file): Dask's own Keras serializer predates Keras 3.
    return record, pickle.dumps(savable(model)) if keep else None


def _layers_hint(model: Model) -> str:
    """The layers whose classes Keras cannot find again: neither Keras's nor registered."""
    names = [
        f"{layer.name!r} ({type(layer).__name__})"
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if not type(layer).__module__.startswith("keras")
        and keras.saving.get_registered_name(type(layer)) == type(layer).__name__
    ]
    return f" Layers whose class is not registered: {', '.join(names)}." if names else ""


class Dispatch:
    """Sends a comparison's runs to an executor, yields them as they finish, and submits a
    run that failed (its worker died, or it raised) once more.

    The starting model, data and settings are pickled once (the model as `.keras` bytes) and
    travel with every run; each worker unpickles them once per comparison. `"processes"` is
    a spawned pool of one worker per core (forking after TensorFlow started can hang), made
    anew if a worker dies; an executor given is only submitted to.
    """

    def __init__(self, executor: Any, plan: ComparisonPlan, settings: TrainSettings, keep: str):
        if plan.arrays[0] is None:
            raise ValueError(
                "`executor=` sends the training data to its workers as NumPy arrays, and "
                f"`train` is a {type(plan.train).__name__}. Pass `(x, y)` arrays, or read a "
                "dataset once into arrays with `cache=FeatureCache(deterministic=True)`."
            )
        cache = settings.cache
        if isinstance(cache, FeatureCache):  # its settings travel, not its activations
            cache = FeatureCache(
                cache.budget_bytes, cache.cache_dir, cache.spill, cache.deterministic
            )
        try:
            self.blob: Any = pickle.dumps((plan, replace(settings, cache=cache)))
            pickle.loads(self.blob)  # the model must load again, its custom layers too
        except Exception as error:
            raise ValueError(
                "`executor=` sends the starting model (as a `.keras` file), the data and the "
                f"settings to its workers, and they cannot be sent: {error!r}."
                f"{_layers_hint(plan.start)} Register custom layers with "
                "`@keras.saving.register_keras_serializable()`, give them `get_config()`, and "
                "pass callbacks that can be pickled."
            ) from error
        # Dask: the pickled plan goes to each worker once, not per run
        if hasattr(executor, "get_executor"):
            self.blob = executor.scatter(self.blob, broadcast=True)
            executor = executor.get_executor()
        self.token, self.keep = uuid.uuid4().hex, keep != "none"
        self.owned = isinstance(executor, str)
        self.executor = _process_pool() if isinstance(executor, str) else executor

    def close(self) -> None:
        """Stop the pool `"processes"` made (an executor given is left running). Its workers
        exit in the background: TensorFlow takes seconds to exit, and no result is pending."""
        if self.owned:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self, job: Job) -> Future[tuple[RunRecord, bytes | None]]:
        args = (self.blob, self.token, job, self.keep and job.rung is None)
        try:
            return self.executor.submit(remote_job, *args)
        except BrokenProcessPool:
            if not self.owned:
                raise
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = _process_pool()  # a worker died: a fresh pool for what is left
            return self.executor.submit(remote_job, *args)

    def run(
        self, jobs: list[Job], progress: RunProgress
    ) -> Iterator[tuple[Job, RunRecord, Model | None]]:
        """Each of `jobs` with its record and (if kept) model, in the order they finish.

        Raises:
            RunsFailed: After the others finished, if a run failed twice.
        """
        if jobs:
            progress.note(f"{len(jobs)} runs submitted to a {type(self.executor).__name__}")
        pending = {self._submit(job): job for job in jobs}
        retried: set[RunKey] = set()
        failed: dict[RunKey, BaseException] = {}
        try:
            while pending:
                for future in wait(pending, return_when=FIRST_COMPLETED)[0]:
                    job = pending.pop(future)
                    try:
                        record, saved = future.result()
                    except Exception as error:  # the worker died, or the run raised
                        if job.key in retried:
                            failed[job.key] = error
                            continue
                        retried.add(job.key)
                        progress.note(f"{job.tag} seed={job.seed}: {error!r}; submitted again")
                        try:
                            pending[self._submit(job)] = job
                        except Exception as again:
                            failed[job.key] = again
                        continue
                    yield job, record, None if saved is None else pickle.loads(saved)
        finally:
            for future in pending:
                future.cancel()
        if failed:
            raise RunsFailed(failed)


def _process_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn"), initializer=one_thread
    )
