"""Model soups: one model whose weights average those of several fine-tuned models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from .._validate import check_choice, check_positive_int, unpack_pair
from ..freezing import copy_model
from ..freezing._layers import ensure_built
from ..metrics import evaluate
from ..types import Model
from ._variables import Values, assign, check_same, is_float, values_of, variable_paths

SOUP_METHODS = ("uniform", "greedy")


def soup(
    models: Sequence[Model],
    *,
    method: str = "uniform",
    validation: tuple[Any, Any] | None = None,
    batch_size: int = 256,
) -> Model:
    """A new model whose weights average those of `models` (a model soup).

    Wortsman et al. (2022), "Model soups: averaging weights of multiple fine-tuned models
    improves accuracy without increasing inference time". The ingredients should be
    fine-tuned from one pretrained model (different seeds, learning rates or strategies):
    averaging models trained from different initialisations gives a poor model.

    Every variable is averaged element-wise, the weights *and* the non-trainable state:
    BatchNormalization's moving mean and variance are averaged like weights (not recomputed
    on data). Variables that are not floating point are copied from the first ingredient.
    Variables are matched by their path in the model (leaf layer path and variable name,
    e.g. `"dense/kernel"`), so the models' own names may differ. None of `models` is mutated.

    Args:
        models: Sequence of built `keras.Model`s with one architecture: the same leaf layers
            and variable shapes.
        method: `"uniform"` (the mean of all models) or `"greedy"` (Wortsman et al.'s greedy
            soup: the models sorted by validation accuracy, best first; starting from the
            best, each next model joins the average only if the validation accuracy of the
            average does not drop). Defaults to `"uniform"`.
        validation: `(x, y)` NumPy arrays (integer or one-hot labels). Needed by `"greedy"`;
            `"uniform"` does not use it. Accuracy is `transferkit.metrics.evaluate`'s (argmax
            of the outputs). Defaults to `None`.
        batch_size: int. Batch size for the validation predictions. Defaults to `256`.

    Returns:
        A new `keras.Model`: a copy of the first model (`"uniform"`) or of the most accurate
        one (`"greedy"`), with the averaged weights and that model's trainable flags.

    Raises:
        TypeError: If an item of `models` is not a `keras.Model`.
        ValueError: If `models` is empty, the models differ in layers or variable shapes
            (the message names the first differing layer or variable), `method` is unknown,
            `"greedy"` has no `validation`, or the validation data are invalid.

    Example:
    ```python
    import keras
    import numpy as np
    from transferkit import copy_model, soup

    a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")])
    b = copy_model(a)
    b.get_layer("out").kernel.assign(np.ones((4, 2)))
    mixed = soup([a, b])
    expected = (keras.ops.convert_to_numpy(a.get_layer("out").kernel) + 1) / 2
    assert np.allclose(keras.ops.convert_to_numpy(mixed.get_layer("out").kernel), expected)
    ```
    """
    models = _check_models(models)
    method = check_choice(method, "method", SOUP_METHODS)
    batch_size = check_positive_int(batch_size, "batch_size")
    if method == "greedy" and validation is None:
        raise ValueError(
            "`method='greedy'` adds a model to the soup only if the validation accuracy does "
            "not drop, so it needs `validation=(x, y)`. Pass validation data, or use "
            "`method='uniform'`. Received: validation=None"
        )
    paths = [variable_paths(model) for model in models]
    check_same(models, paths)
    values = [values_of(p) for p in paths]
    if method == "uniform":
        mixed = copy_model(models[0])
        assign(mixed, models[0], paths[0], average(paths[0], values, range(len(models))))
        return mixed
    # Wortsman et al.'s greedy soup (their Recipe 1), on validation accuracy.
    x, y = unpack_pair(validation, "validation")

    def accuracy(model: Model) -> float:
        return evaluate(model, x, y, batch_size=batch_size).accuracy

    scores = [accuracy(model) for model in models]
    order = sorted(range(len(models)), key=lambda i: -scores[i])  # stable: ties keep order
    best = order[0]
    # Every average is written into one copy of the best model (the same architecture).
    mixed = copy_model(models[best])
    chosen, score = [best], scores[best]
    for i in order[1:]:
        # The values of model `j` live under the paths of model `j`; `check_same` made the
        # paths equal, so `paths[best]` names the variables of every model.
        assign(mixed, models[best], paths[best], average(paths[best], values, [*chosen, i]))
        if (candidate := accuracy(mixed)) >= score:
            chosen, score = [*chosen, i], candidate
    assign(mixed, models[best], paths[best], average(paths[best], values, chosen))
    return mixed


def _check_models(models: Any) -> list[Model]:
    if isinstance(models, keras.Model) or not isinstance(models, Sequence) or not models:
        raise ValueError(
            "`models` must be a non-empty list of `keras.Model`s with one architecture. "
            f"Received: models={models!r}"
        )
    for i, model in enumerate(models):
        ensure_built(model, f"models[{i}]")
    return list(models)


def average(paths: dict[str, Any], values: Sequence[Values], members: Sequence[int]) -> Values:
    """The element-wise mean of the members' values, in each variable's dtype; variables that
    are not floating point come from the first member."""
    first = members[0]
    out: Values = {}
    for path, variable in paths.items():
        if not is_float(variable) or len(members) == 1:
            out[path] = values[first][path]
            continue
        total = np.sum([values[i][path].astype(np.float64) for i in members], axis=0)
        out[path] = (total / len(members)).astype(values[first][path].dtype)
    return out
