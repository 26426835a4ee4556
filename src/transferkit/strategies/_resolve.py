"""`resolve_strategy`: a strategy or its short name, as a `Strategy`."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from .._validate import did_you_mean
from ..freezing._layers import Boundary
from ._builtin import FeatureExtractor, FullFineTune, PartialFreeze
from ._l2sp import L2SP
from ._recipes import RECIPES
from ._strategy import BaseStrategy, Strategy

STRATEGY_NAMES = ("full", "partial", "feature_extractor")


def resolve_strategy(strategy: Strategy | str) -> Strategy:
    """Turn a strategy or its short name into a `Strategy`.

    Args:
        strategy: A `Strategy` or a short name: `"full"`, `"partial"` (or `"partial:<upto>"`),
            `"feature_extractor"` (or `"feature_extractor:<cut>"`), `"scratch"`, `"lp_ft"`,
            `"gradual"`, `"discriminative"`, `"layer_decay"` or `"lora"`.

    Returns:
        A `Strategy`.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
        TypeError: For anything that is neither a string nor a `Strategy`.

    Example:
    ```python
    from transferkit import PartialFreeze, resolve_strategy

    assert resolve_strategy("partial:4") == PartialFreeze(upto=4)
    ```
    """
    if isinstance(strategy, str):
        base, _, arg = strategy.partition(":")
        boundary: Boundary | None = int(arg) if arg.lstrip("-").isdigit() else (arg or None)
        if base == "full" and not arg:
            return FullFineTune()
        if base == "partial":
            return PartialFreeze(upto=boundary)
        if base in ("feature_extractor", "feature-extractor"):
            return FeatureExtractor(cut=boundary)
        if base in RECIPES and not arg:
            return RECIPES[base]()  # type: ignore[no-any-return]
        known = (*STRATEGY_NAMES, *RECIPES)
        hint = did_you_mean(base, known)
        raise ValueError(
            f"Unknown strategy {strategy!r}. Known strategy names: "
            f"{', '.join(repr(n) for n in known)} (with an optional ':<boundary>' for "
            f"'partial' and 'feature_extractor'), or pass a `Strategy` object.{hint}"
        )
    if isinstance(strategy, Strategy) and not isinstance(strategy, type):
        return strategy
    if isinstance(strategy, type):  # the class itself passes the protocol check: say so
        raise TypeError(
            f"`strategy` must be a `Strategy` object, not a class: pass "
            f"`{strategy.__name__}()` instead of `{strategy.__name__}`."
        )
    raise TypeError(
        "`strategy` must be a strategy name (str) or a `Strategy` object such as "
        f"`FullFineTune()`. Received: {strategy!r} of type {type(strategy).__name__}."
    )


def with_learning_rate(strategy: Strategy, rate: float) -> Strategy:
    """`strategy` at `rate`, its label kept (a dataclass strategy gets `learning_rate=rate`).

    Raises:
        ValueError: For a strategy that is not a dataclass with a `learning_rate` field.
    """
    instance = dataclasses.is_dataclass(strategy) and not isinstance(strategy, type)
    fields = {f.name for f in dataclasses.fields(strategy)} if instance else set()  # type: ignore[arg-type]
    if "learning_rate" not in fields:
        raise ValueError(
            f"Cannot set the learning rate of the strategy {strategy.name!r} "
            f"({type(strategy).__name__}): it is not a dataclass with a `learning_rate` field. "
            f"Train it with `fine_tune(..., strategy=strategy, learning_rate={rate!r})`."
        )
    changes: dict[str, Any] = {"learning_rate": rate}
    if "label" in fields and getattr(strategy, "label", None) is None:
        changes["label"] = strategy.name  # keeps the comparison's label, whatever its rate
    return dataclasses.replace(strategy, **changes)  # type: ignore[type-var]


def _value(key: str, value: Any) -> Any:
    """A field of a strategy's `to_dict()` as the constructor takes it."""
    if key == "regularizer" and isinstance(value, dict):
        return L2SP(**value.get("config", {}))
    if key == "optimizer" and isinstance(value, dict):
        short = str(value.get("class_name", "")).rsplit(".", 1)[-1]
        return keras.optimizers.get({"class_name": short, "config": value.get("config", {})})
    return tuple(value) if isinstance(value, list) else value


def strategy_from_dict(d: dict[str, Any]) -> Strategy:
    """Rebuild a built-in strategy from its `to_dict()` (e.g. a comparison log's header).

    Raises:
        ValueError: If `d` does not describe one of transferkit's strategies.
    """
    import transferkit

    cls = getattr(transferkit, str(d.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
        raise ValueError(
            f"Cannot rebuild the strategy {d.get('name')!r} (type {d.get('type')!r}) from its "
            "description: only transferkit's strategies can be. Pass the strategy object."
        )
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {k: _value(k, v) for k, v in d.items() if k in names}
    return cls(**kwargs)  # type: ignore[return-value]  # subclasses add `prepare`
