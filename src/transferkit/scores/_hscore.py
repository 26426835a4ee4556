"""The H-score (Bao et al., 2019): how much of the features' variance separates the classes."""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from ._spectrum import one_hot, scoring_inputs, spectrum


def hscore(features: Any, labels: npt.ArrayLike) -> float:
    """The H-score of `features` for `labels`: `tr(cov(f)^-1 cov(E[f | y]))`.

    Bao, Li, Huang, Wang, Zheng and Zhong, "An Information-Theoretic Approach to
    Transferability in Task Transfer Learning", ICIP 2019. With centred features, `cov(f)`
    their covariance and `cov(E[f | y])` that of the class means (each sample replaced by its
    class's mean), it is the between-class variance measured in the features' own metric: a
    linear classifier's headroom. `cov(f)` is inverted as a pseudo-inverse (directions of
    zero variance are left out), computed from one eigendecomposition. Higher is better;
    it lies between 0 and the number of classes minus one.

    Args:
        features, labels: As in `logme`.

    Returns:
        The H-score (float).

    Raises:
        ValueError: For the inputs `logme` refuses.

    Example:
    ```python
    import numpy as np
    from transferkit import hscore

    labels = np.arange(200) % 2
    separable = np.stack([labels, np.sin(np.arange(200))], axis=1)  # column 0 is the class
    assert abs(hscore(separable, labels) - 1.0) < 1e-9  # all of the between-class variance
    assert hscore(separable[:, 1:], labels) < 0.01
    ```
    """
    f, ids = scoring_inputs(features, labels)
    f -= f.mean(axis=0)
    indicators = one_hot(ids)
    s = spectrum(f, indicators)
    # With F = U S V^T (centred), a class mean is mu_c = F^T e_c / n_c, so
    # mu_c^T pinv(F^T F / n) mu_c = n |U^T e_c|^2 / n_c^2; cov(E[f | y]) weighs class c by
    # n_c / n, so the trace is the sum over classes of |U^T e_c|^2 / n_c.
    return float(((s.projections**2).sum(axis=0) / indicators.sum(axis=0)).sum())
