"""transferkit: correct, fast and measurable transfer learning for Keras 3.

Importing transferkit imports Keras (and so the backend Keras is configured for) and nothing
else heavy: it never imports TensorFlow by itself when another Keras backend is selected.
"""

from ._cache import CacheInfo as CacheInfo
from ._cache import FeatureCache as FeatureCache
from ._compare import compare_strategies as compare_strategies
from ._comparison import Comparison as Comparison
from ._comparison import PhaseRecord as PhaseRecord
from ._comparison import RunRecord as RunRecord
from ._comparison import SummaryRow as SummaryRow
from ._copy import copy_model as copy_model
from ._freeze import FreezeReport as FreezeReport
from ._freeze import RecompileWarning as RecompileWarning
from ._freeze import TrainableState as TrainableState
from ._freeze import freeze as freeze
from ._freeze import frozen as frozen
from ._freeze import unfreeze as unfreeze
from ._heads import as_feature_extractor as as_feature_extractor
from ._heads import replace_head as replace_head
from ._l2sp import L2SP as L2SP
from ._layers import LeafLayer as LeafLayer
from ._layers import leaf_layers as leaf_layers
from ._lora import LoRA as LoRA
from ._rates import LayerRates as LayerRates
from ._recipes import GradualUnfreeze as GradualUnfreeze
from ._recipes import LinearProbeThenFineTune as LinearProbeThenFineTune
from ._recipes import Scratch as Scratch
from ._strategies import FeatureExtractor as FeatureExtractor
from ._strategies import FullFineTune as FullFineTune
from ._strategies import PartialFreeze as PartialFreeze
from ._strategies import Phase as Phase
from ._strategies import Strategy as Strategy
from ._strategies import resolve_strategy as resolve_strategy
from ._summary import LayerInfo as LayerInfo
from ._summary import TrainableSummary as TrainableSummary
from ._summary import trainable_summary as trainable_summary
from ._train import FitResult as FitResult
from ._train import fine_tune as fine_tune
from ._version import __version__ as __version__

__all__ = [
    "Comparison",
    "RunRecord",
    "SummaryRow",
    "compare_strategies",
    "CacheInfo",
    "FeatureCache",
    "FeatureExtractor",
    "FitResult",
    "FullFineTune",
    "PartialFreeze",
    "Phase",
    "PhaseRecord",
    "Scratch",
    "LinearProbeThenFineTune",
    "GradualUnfreeze",
    "LoRA",
    "L2SP",
    "LayerRates",
    "Strategy",
    "fine_tune",
    "resolve_strategy",
    "FreezeReport",
    "LayerInfo",
    "LeafLayer",
    "RecompileWarning",
    "TrainableState",
    "TrainableSummary",
    "__version__",
    "as_feature_extractor",
    "copy_model",
    "freeze",
    "frozen",
    "leaf_layers",
    "replace_head",
    "trainable_summary",
    "unfreeze",
]
