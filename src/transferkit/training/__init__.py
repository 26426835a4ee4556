"""The training engine: `fine_tune`, its phases and the frozen-prefix activation cache."""

from __future__ import annotations

from ._cache import CacheInfo as CacheInfo
from ._cache import FeatureCache as FeatureCache
from ._fine_tune import fine_tune as fine_tune
from ._phases import PhaseRecord as PhaseRecord
from ._run import FitResult as FitResult
