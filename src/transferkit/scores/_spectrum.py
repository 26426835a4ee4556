"""The one decomposition transferability scores need: the spectrum of the features.

For features `F` (n samples x d dimensions) with the thin SVD `F = U S V^T`, LogME and the
H-score need only the non-zero eigenvalues `sigma = S**2` of `F^T F` and the targets in the
left singular basis, `U^T Y`. Both come from one symmetric eigendecomposition of the smaller
Gram matrix: `F^T F` (d x d) when d <= n, else `F F^T` (n x n). Both the Gram matrix and its
eigendecomposition are float64, as in the reference implementations: with a float32
eigendecomposition, LogME of the lab CNN's flattened features (3,000 Fashion-MNIST images)
moved by 0.4%. The cost is that of the eigendecomposition, O(min(n, d)^3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.linalg

from .._labels import to_labels
from .._validate import as_numpy, check_lengths
from ..types import FloatArray, IntArray


@dataclass(frozen=True)
class Spectrum:
    """Non-zero eigenvalues of `F^T F` and the targets projected on the left singular vectors."""

    sigma: FloatArray
    projections: FloatArray
    num_samples: int
    dim: int


def spectrum(features: FloatArray, targets: FloatArray) -> Spectrum:
    """The `Spectrum` of `features` (n x d, float64) for `targets` (n x c)."""
    n, d = features.shape
    gram = features.T @ features if d <= n else features @ features.T
    # `evd` (divide and conquer) is LAPACK's fastest driver for all eigenvectors.
    sigma, vectors = scipy.linalg.eigh(gram, driver="evd", overwrite_a=True, check_finite=False)
    # Eigenvalues below the rounding noise of the Gram matrix are zero (numpy's `matrix_rank`
    # tolerance, for the squared singular values).
    keep = sigma > max(float(sigma[-1]), 0.0) * max(n, d) * np.finfo(np.float64).eps
    basis = vectors[:, keep]
    if d <= n:  # U^T Y = S^-1 V^T F^T Y
        projections = (basis.T @ (features.T @ targets)) / np.sqrt(sigma[keep])[:, None]
    else:
        projections = basis.T @ targets
    return Spectrum(sigma=sigma[keep], projections=projections, num_samples=n, dim=d)


def scoring_inputs(features: Any, labels: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
    """Features as a float64 (n, d) array (later axes flattened) and labels as `0..c-1`.

    Raises:
        ValueError: If the features are not finite numbers with a sample axis, the lengths
            differ, or the labels hold fewer than two classes.
    """
    f = as_numpy(features)
    if f.ndim < 2 or f.shape[0] < 2 or not np.issubdtype(f.dtype, np.number):
        raise ValueError(
            "`features` must be a numeric array of shape (num_samples, ...) with at least 2 "
            f"samples. Received: features.shape={f.shape}, dtype={f.dtype}"
        )
    f = f.reshape(len(f), -1).astype(np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError(
            f"`features` must be finite. Received: {int(np.sum(~np.isfinite(f)))} NaN/inf values"
        )
    y, _ = to_labels(labels, "labels")
    check_lengths("features", len(f), "labels", len(y))
    classes, ids = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            "`labels` must hold at least two classes: a score of how well features separate "
            f"classes needs classes to separate. Received: only class {int(classes[0])}"
        )
    return f, ids.reshape(-1).astype(np.int64)


def one_hot(ids: IntArray) -> FloatArray:
    """`ids` (0..c-1) as float64 one-hot rows."""
    return np.eye(int(ids.max()) + 1, dtype=np.float64)[ids]
