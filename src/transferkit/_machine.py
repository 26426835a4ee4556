"""`machine_info`: what a measurement ran on (CPU, cores, memory, software stack)."""

from __future__ import annotations

import os
import platform
from contextlib import suppress
from dataclasses import dataclass

import keras

from . import _serial


@dataclass(frozen=True)
class MachineInfo(_serial.Record):
    """What a measurement ran on: CPU, cores, memory and the software stack.

    Attributes:
        cpu: CPU model name.
        cores: CPU cores this process may use.
        memory_gib: Total physical memory in GiB (`nan` where unknown).
        gpus: Accelerators the Keras backend sees.
        system: Operating system and machine architecture.
        python, keras, backend, backend_version: Versions, and the Keras backend's name.

    Example:

    ```python
    from transferkit.timing import MachineInfo

    info = MachineInfo("AMD EPYC", 2, 23.5, (), "Linux x86_64", "3.11.7", "3.15.1",
                       "tensorflow", "2.21.0")
    assert str(info).startswith("AMD EPYC, 2 cores, 24 GiB RAM, no GPU")
    assert info.to_dict()["gpus"] == []
    ```
    """

    cpu: str
    cores: int
    memory_gib: float
    gpus: tuple[str, ...]
    system: str
    python: str
    keras: str
    backend: str
    backend_version: str

    def __str__(self) -> str:
        return (
            f"{self.cpu}, {self.cores} cores, {self.memory_gib:.0f} GiB RAM, "
            f"{', '.join(self.gpus) if self.gpus else 'no GPU'}; {self.system}; "
            f"Python {self.python}, Keras {self.keras}, {self.backend} {self.backend_version}"
        )


def _cpu_name() -> str:
    with suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _memory_gib() -> float:
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) / 1024**3
    except (ValueError, OSError, AttributeError):
        return float("nan")


def _backend_devices(backend: str) -> tuple[str, tuple[str, ...]]:
    """The backend framework's version and its accelerators (imports only that framework)."""
    if backend == "tensorflow":
        import tensorflow as tf

        return str(tf.__version__), tuple(d.name for d in tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return str(jax.__version__), tuple(str(d) for d in jax.devices() if d.platform != "cpu")
    if backend == "torch":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return str(torch.__version__), tuple(torch.cuda.get_device_name(i) for i in range(n))
    return "unknown", ()


def machine_info() -> MachineInfo:
    """Describes this machine and software stack, for the record next to a measurement.

    Returns:
        A `MachineInfo`; `str()` gives a one-line description.

    Example:

    ```python
    from transferkit.timing import machine_info

    info = machine_info()
    assert info.cores >= 1 and info.backend in str(info)
    ```
    """
    backend = str(keras.backend.backend())
    version, gpus = _backend_devices(backend)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return MachineInfo(
        cpu=_cpu_name(),
        cores=int(cores or 1),
        memory_gib=_memory_gib(),
        gpus=gpus,
        system=f"{platform.system()} {platform.machine()}",
        python=platform.python_version(),
        keras=str(keras.__version__),
        backend=backend,
        backend_version=version,
    )
