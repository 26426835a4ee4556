"""One way to turn the typed result records into JSON-ready dicts and back."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(record: Any) -> dict[str, Any]:
    """The fields of a dataclass `record` as a JSON-ready dict (tuples become lists)."""
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _plain(value: Any) -> Any:
    """`value` with records as dicts and tuples as lists, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


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
