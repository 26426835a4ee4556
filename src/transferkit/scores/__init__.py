"""Transferability before training: LogME and the H-score of a model's features at its cuts."""

from __future__ import annotations

from ._hscore import hscore as hscore
from ._logme import logme as logme
from ._transferability import TransferabilityRow as TransferabilityRow
from ._transferability import TransferabilityTable as TransferabilityTable
from ._transferability import transferability as transferability
