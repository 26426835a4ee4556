"""One way to turn the typed result records into JSON-ready dicts and back."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import keras
import numpy as np

from ._chunks import hash_arrays

T = TypeVar("T")


def to_dict(record: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of a dataclass `record`, but those in `drop`, as a JSON-ready dict (tuples
    become lists)."""
    fields = [f.name for f in dataclasses.fields(record) if f.name not in drop]
    return {name: _plain(getattr(record, name)) for name in fields}


def _plain(value: Any) -> Any:
    """`value` with records as dicts and tuples as lists, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def from_dict(cls: type[T], d: Any, arg: str = "d") -> T:
    """Rebuilds the dataclass `cls` from the output of `to_dict` (extra keys are ignored).

    Raises:
        ValueError: If `d` is not a mapping or lacks a field that has no default.
    """
    if not isinstance(d, Mapping):
        raise ValueError(
            f"`{arg}` must be a dict (the output of `to_dict()`). Received: {type(d).__name__}"
        )
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    none = dataclasses.MISSING
    missing = [f.name for f in fields if f.name not in d and f.default is f.default_factory is none]
    if missing:
        raise ValueError(
            f"`{arg}` is missing keys {missing}. Expected the output of `to_dict()`. "
            f"Received keys: {sorted(d)}"
        )
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _typed(hints[f.name], d[f.name]) for f in fields if f.name in d})


def _typed(hint: Any, value: Any) -> Any:
    """`value` (as JSON gives it back) converted to the annotated type where that matters."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return _typed(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        # A record's own `from_dict` reads the formats of earlier releases too.
        return getattr(hint, "from_dict", partial(from_dict, hint))(value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else Any
        return tuple(_typed(item, v) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class Record:
    """Mixin: `to_dict` and `from_dict` for a frozen result dataclass."""

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
        """Rebuilds the record from the output of `to_dict`."""
        return from_dict(cls, d)


def jsonable(value: Any) -> Any:
    """`value` as JSON types, with a *stable* text for anything else (never an address)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"array": content_hash([value])}
    return describe(value)


def _public_name(cls: type) -> str:
    """`transferkit.L2SP` for transferkit's exported classes (stable when modules move)."""
    import transferkit

    if getattr(transferkit, cls.__name__, None) is cls:
        return f"transferkit.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(value: Any) -> Any:
    """A JSON description of a setting that changes results: optimizer, loss, callback.

    Names are kept as they are; objects with `get_config` (Keras optimizers with their
    learning rate or schedule, losses, schedules) give their class and configuration; Keras's
    own callbacks give their constructor arguments; functions give their qualified name. A
    user-defined object without `get_config` is described by its class only: define
    `get_config` on it to have its settings fingerprinted too.
    """
    if value is None or isinstance(value, bool | int | float | str | np.generic):
        return jsonable(value)
    if isinstance(value, dict | list | tuple | np.ndarray):
        return jsonable(value)
    cls = type(value)
    name = _public_name(cls)
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return f"{value.__module__}.{value.__qualname__}"
    get_config = getattr(value, "get_config", None)
    if callable(get_config):  # minus its `name`: Keras numbers them ("sgd_1"), results agree
        config = {k: v for k, v in get_config().items() if k != "name"}
        return {"class_name": name, "config": jsonable(config)}
    if cls.__module__.startswith("keras."):  # Keras callbacks keep their arguments as attributes
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        args = {p: jsonable(getattr(value, p)) for p in params if hasattr(value, p)}
        return {"class_name": name, "config": args}
    return {"class_name": name}


def describe_fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields made JSON-safe: optimizers, schedules, layers by config or name."""
    d = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    for key, value in d.items():
        if isinstance(value, keras.layers.Layer):
            d[key] = value.name
        elif isinstance(value, tuple | list):
            d[key] = [v.name if isinstance(v, keras.layers.Layer) else v for v in value]
        elif value is not None and not isinstance(value, str | int | float | bool):
            d[key] = describe(value)
    return d


def content_hash(arrays: Sequence[np.ndarray[Any, Any]]) -> str:
    """A short hex digest of the full contents of `arrays`."""
    h = hashlib.sha256()  # SHA-NI makes it faster than blake2b on current CPUs
    hash_arrays(h, arrays)
    return h.hexdigest()[:32]
