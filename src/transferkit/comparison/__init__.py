"""Comparisons: `compare_strategies`, its records, resumable logs, reports and plots."""

from __future__ import annotations

from ._compare import compare_strategies as compare_strategies
from ._comparison import Comparison as Comparison
from ._load import load_comparison as load_comparison
from ._parallel import RunsFailed as RunsFailed
from ._records import RunRecord as RunRecord
from ._records import SummaryRow as SummaryRow
