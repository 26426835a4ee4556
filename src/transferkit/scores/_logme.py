"""LogME (You et al., ICML 2021): the evidence of a Bayesian linear model on the features."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ..types import FloatArray
from ._spectrum import Spectrum, one_hot, scoring_inputs, spectrum

EPSILON = 1e-5
"""Added to `m^T m` and the squared residual, as the paper's reference code does (it keeps
alpha and beta finite when the features fit a class exactly, e.g. with more dimensions than
samples)."""

TOLERANCE = 1e-8
"""Iterate until `lambda = alpha / beta` changes by less than this, relatively. The reference
code stops at 1e-2 (and after 11 steps), an approximation of the maximum evidence; this is the
maximum itself, so any correct implementation agrees with it."""

MAX_ITERATIONS = 1000


def logme(features: Any, labels: npt.ArrayLike) -> float:
    """LogME: how well a linear model on `features` can explain `labels`, before training.

    You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021, Algorithm 1. For each class, a Bayesian linear regression of its
    one-hot column on the features (prior `N(0, 1/alpha)` on the weights, noise precision
    `beta`); alpha and beta maximise the evidence by MacKay's fixed-point iteration, using one
    eigendecomposition of the features' Gram matrix for every class. The score is the log
    evidence divided by the number of samples (as the paper's reference code normalises it),
    averaged over the classes present in `labels`. Higher is better; scores compare features
    of one data set (different cuts, different backbones), not across data sets.

    The iteration runs to convergence (relative change of alpha / beta below 1e-8) rather
    than stopping at the reference code's 1% or 11 steps, so the value is the maximum
    evidence itself; it keeps the reference code's `1e-5` added to the two squared norms.

    Args:
        features: Array of shape `(num_samples, ...)`: the features (later axes flattened).
        labels: Integer class labels of shape `(num_samples,)`, or one-hot rows.

    Returns:
        The LogME score (float).

    Raises:
        ValueError: If `features` is not finite or has fewer than 2 samples, the lengths
            differ, or `labels` holds fewer than two classes.

    Example:
    ```python
    import numpy as np
    from transferkit import logme

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    informative = np.eye(3)[labels] + 0.1 * rng.normal(size=(300, 3))
    noise = rng.normal(size=(300, 3))
    assert logme(informative, labels) > logme(noise, labels)
    ```
    """
    f, ids = scoring_inputs(features, labels)
    targets = one_hot(ids)
    s = spectrum(f, targets)
    evidences = [
        class_evidence(s.sigma, s.projections[:, c], float(targets[:, c] @ targets[:, c]), s)
        for c in range(targets.shape[1])
    ]
    return float(np.mean(evidences))


def class_evidence(sigma: FloatArray, x: FloatArray, yy: float, s: Spectrum) -> float:
    """The maximum log evidence per sample for one target column with projections `x`.

    With `F = U S V^T`, `x = U^T y` and `w_i = beta / (alpha + beta sigma_i)`, the posterior
    mean is `m = V (w * S x)`, so `m^T m = sum(sigma x^2 w^2)` and `|y - F m|^2 =
    |y|^2 - |x|^2 + sum((x alpha / (alpha + beta sigma))^2)`: Algorithm 1's updates in O(k)
    per step. The `d - k` zero eigenvalues of `F^T F` count in `gamma` (as 0) and in
    `log det A` (as `log alpha` each).
    """
    n, d = s.num_samples, s.dim
    if len(sigma) == 0:  # all-zero features: the limit alpha -> 0, where the prior cancels
        beta = n / (yy + EPSILON)
        return (n / 2 * math.log(beta) - n / 2 - n / 2 * math.log(2 * math.pi)) / n
    x2 = x * x
    outside = max(yy - float(x2.sum()), 0.0)  # the part of y outside the span of F
    alpha, beta, lam = 1.0, 1.0, 1.0  # lam = alpha / beta
    for _ in range(MAX_ITERATIONS):
        gamma = float((sigma / (sigma + lam)).sum())
        m2 = float((sigma * x2 * (beta / (alpha + beta * sigma)) ** 2).sum())
        residual = outside + float((x2 * (alpha / (alpha + beta * sigma)) ** 2).sum())
        alpha, beta = gamma / (m2 + EPSILON), (n - gamma) / (residual + EPSILON)
        new_lam = alpha / beta
        if abs(new_lam - lam) / lam < TOLERANCE:
            break
        lam = new_lam
    log_det = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * math.log(alpha)
    evidence = (
        d / 2 * math.log(alpha)
        + n / 2 * math.log(beta)
        - log_det / 2
        - beta / 2 * (residual + EPSILON)
        - alpha / 2 * (m2 + EPSILON)
        - n / 2 * math.log(2 * math.pi)
    )
    return evidence / n
