"""Freezing and heads: leaf layers, `freeze`, copies, new heads and feature extractors."""

from __future__ import annotations

from ._copy import copy_model as copy_model
from ._freeze import FreezeReport as FreezeReport
from ._freeze import RecompileWarning as RecompileWarning
from ._freeze import TrainableState as TrainableState
from ._freeze import freeze as freeze
from ._freeze import frozen as frozen
from ._freeze import unfreeze as unfreeze
from ._heads import as_feature_extractor as as_feature_extractor
from ._heads import replace_head as replace_head
from ._layers import LeafLayer as LeafLayer
from ._layers import leaf_layers as leaf_layers
from ._summary import LayerInfo as LayerInfo
from ._summary import TrainableSummary as TrainableSummary
from ._summary import trainable_summary as trainable_summary
