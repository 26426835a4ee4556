"""Strategies and recipes: small immutable values saying what trains, for how long and how fast."""

from __future__ import annotations

from ._builtin import FeatureExtractor as FeatureExtractor
from ._builtin import FullFineTune as FullFineTune
from ._builtin import PartialFreeze as PartialFreeze
from ._l2sp import L2SP as L2SP
from ._lora import LoRA as LoRA
from ._phase import Phase as Phase
from ._rates import LayerRates as LayerRates
from ._recipes import GradualUnfreeze as GradualUnfreeze
from ._recipes import LinearProbeThenFineTune as LinearProbeThenFineTune
from ._recipes import Scratch as Scratch
from ._resolve import resolve_strategy as resolve_strategy
from ._strategy import Strategy as Strategy
