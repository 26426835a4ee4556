"""`resolve_strategy`: a strategy or its short name, as a `Strategy`."""

from __future__ import annotations

import difflib

from ..freezing._layers import Boundary
from ._builtin import FeatureExtractor, FullFineTune, PartialFreeze
from ._recipes import RECIPES
from ._strategy import Strategy

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
        boundary: Boundary | None = None
        if arg:
            boundary = int(arg) if arg.lstrip("-").isdigit() else arg
        if base == "full" and not arg:
            return FullFineTune()
        if base == "partial":
            return PartialFreeze(upto=boundary)
        if base in ("feature_extractor", "feature-extractor"):
            return FeatureExtractor(cut=boundary)
        if base in RECIPES and not arg:
            return RECIPES[base]()  # type: ignore[no-any-return]
        known = (*STRATEGY_NAMES, *RECIPES)
        close = difflib.get_close_matches(base, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
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
