"""transferkit: correct, fast and measurable transfer learning for Keras 3.

Importing transferkit imports Keras (and so the backend Keras is configured for) and nothing
else heavy: it never imports TensorFlow by itself when another Keras backend is selected.
"""

from types import ModuleType as _ModuleType

from ._version import __version__ as __version__
from .comparison import Comparison as Comparison
from .comparison import RunRecord as RunRecord
from .comparison import RunsFailed as RunsFailed
from .comparison import SummaryRow as SummaryRow
from .comparison import compare_strategies as compare_strategies
from .comparison import load_comparison as load_comparison
from .datasets import ImageFolder as ImageFolder
from .datasets import from_directory as from_directory
from .freezing import FreezeReport as FreezeReport
from .freezing import LayerInfo as LayerInfo
from .freezing import LeafLayer as LeafLayer
from .freezing import RecompileWarning as RecompileWarning
from .freezing import TrainableState as TrainableState
from .freezing import TrainableSummary as TrainableSummary
from .freezing import as_feature_extractor as as_feature_extractor
from .freezing import copy_model as copy_model
from .freezing import freeze as freeze
from .freezing import frozen as frozen
from .freezing import leaf_layers as leaf_layers
from .freezing import replace_head as replace_head
from .freezing import trainable_summary as trainable_summary
from .freezing import unfreeze as unfreeze
from .scores import TransferabilityRow as TransferabilityRow
from .scores import TransferabilityTable as TransferabilityTable
from .scores import hscore as hscore
from .scores import logme as logme
from .scores import transferability as transferability
from .strategies import L2SP as L2SP
from .strategies import FeatureExtractor as FeatureExtractor
from .strategies import FullFineTune as FullFineTune
from .strategies import GradualUnfreeze as GradualUnfreeze
from .strategies import LayerRates as LayerRates
from .strategies import LinearProbeThenFineTune as LinearProbeThenFineTune
from .strategies import LoRA as LoRA
from .strategies import PartialFreeze as PartialFreeze
from .strategies import Phase as Phase
from .strategies import Scratch as Scratch
from .strategies import Strategy as Strategy
from .strategies import resolve_strategy as resolve_strategy
from .training import CacheInfo as CacheInfo
from .training import FeatureCache as FeatureCache
from .training import FitResult as FitResult
from .training import PhaseRecord as PhaseRecord
from .training import fine_tune as fine_tune
from .weights import WiseFTResult as WiseFTResult
from .weights import interpolate as interpolate
from .weights import soup as soup
from .weights import wise_ft as wise_ft

# The public names are the ones imported above: one list, written once.
_names = {name: value for name, value in globals().items() if not name.startswith("_")}
__all__ = sorted(name for name, value in _names.items() if not isinstance(value, _ModuleType))
__all__.append("__version__")
