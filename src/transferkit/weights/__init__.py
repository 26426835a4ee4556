"""Weight-space operations on trained models: model soups and WiSE-FT interpolation."""

from __future__ import annotations

from ._interpolate import interpolate as interpolate
from ._soup import soup as soup
from ._wise_ft import WiseFTResult as WiseFTResult
from ._wise_ft import wise_ft as wise_ft
