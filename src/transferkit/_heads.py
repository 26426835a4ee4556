"""New heads and feature extractors: `replace_head`, `as_feature_extractor`.

Both build a *new* model from a copy of the caller's model (weights copied, never shared), so
the caller's weights and trainable flags are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

import keras

from ._copy import copy_model
from ._freeze import freeze
from ._layers import Boundary, LeafLayer, ensure_built, leaf_layers, resolve_boundary
from .types import Model, Tensor

_POOLING = ("avg", "max")


def _require_graph(model: Model, fn: str) -> None:
    if not isinstance(model, keras.Sequential | keras.Model):
        raise ValueError(f"`{fn}` needs a Functional or Sequential model.")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"`{fn}` needs a Functional or Sequential model with a known input; model "
            f"{model.name!r} is a subclassed model ({type(model).__name__}) without a layer "
            "graph. Rebuild it with the Functional API, or write the new head by hand."
        )


def classifier_index(leaves: list[LeafLayer]) -> int:
    """Index of the final classification layer: the last leaf layer that has weights."""
    for leaf in reversed(leaves):
        if leaf.layer.weights:
            return leaf.index
    raise ValueError("The model has no layer with weights, so it has no classification layer.")


def default_cut(model: Model) -> int:
    """Number of leading leaf layers before the final classification layer."""
    return classifier_index(leaf_layers(model))


def _resolve_cut(model: Model, cut: Boundary | None, fn: str) -> int:
    """How many leading leaf layers the body keeps (validated: 0 < k < n, or n when `cut` is
    None and the model is headless)."""
    leaves = leaf_layers(model)
    n = len(leaves)
    if cut is None and len(model.outputs) == 1 and len(model.outputs[0].shape) != 2:
        return n  # a headless backbone (e.g. keras-hub's): its output is the feature map
    k = (
        classifier_index(leaves)
        if cut is None
        else resolve_boundary(model, cut, argument="cut", leaves=leaves)
    )
    if k >= n:
        raise ValueError(
            f"`cut` is at the output layer ({leaves[-1].path!r}), so `{fn}` would keep the whole "
            f"model. Pass a layer before the output: an index below {n}, or a layer name such "
            f"as {leaves[max(n - 2, 0)].path!r}. Received: cut={cut!r}"
        )
    if k <= 0:
        raise ValueError(
            f"`cut` must keep at least one layer (an index between 1 and {n - 1}). "
            f"Received: cut={cut!r}"
        )
    return k


def _outer_input(container: Model) -> Tensor:
    """The tensor a nested model was called on in its enclosing graph."""
    nodes = list(container._inbound_nodes)
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
        raise ValueError(
            f"Cannot cut inside the nested model {container.name!r}: it is called "
            f"{len(nodes)} times or on several inputs. Cut at a top-level layer instead."
        )
    return nodes[0].input_tensors[0]


def _tensor_at(leaf_layer: Any, containers: tuple[Model, ...]) -> Tensor:
    """The output tensor of `leaf_layer` in the graph of the walked (outermost) model.

    For a layer inside nested models, each enclosing model is truncated at that layer
    (sharing its layers) and called where the original was called, innermost first.
    """
    tensor = leaf_layer.output
    for container in reversed(containers):
        truncated = keras.Model(container.inputs, tensor, name=f"{container.name}_cut")
        tensor = truncated(_outer_input(container))
    return tensor


def _body(model: Model, k: int) -> tuple[Any, Tensor]:
    """Inputs and the output tensor after the first k leaf layers of (a copy of) `model`."""
    leaf = leaf_layers(model)[k - 1]
    return model.inputs, _tensor_at(leaf.layer, leaf.containers)


def replace_head(
    model: Model,
    num_classes: int,
    *,
    cut: Boundary | None = None,
    hidden: Sequence[int] = (),
    dropout: float = 0.0,
    activation: str | None = "softmax",
) -> Model:
    """A new model: the layers of `model` up to `cut`, then a new head for `num_classes`.

    This is the lab's "replace the final classification layer". The body is a *copy* of
    `model` (weights copied, trainable flags carried over), so `model` itself is not mutated;
    the new head is freshly initialised and trainable.

    Args:
        model: A built Functional or Sequential `keras.Model`.
        num_classes: int. Number of output units of the new classification layer.
        cut: None, int, str or `keras.layers.Layer`. The body keeps the leaf layers up to and
            including this one. Defaults to `None`: everything before the final
            classification layer (the last leaf layer with weights), or the whole model if
            its output is not 2-D (a headless backbone, such as a keras-hub one).
        hidden: Sequence of int. Units of ReLU `Dense` layers to put before the classifier.
            Defaults to `()`.
        dropout: float in [0, 1). Dropout rate before each new `Dense` layer (none when 0).
            Defaults to `0.0`.
        activation: str or None. Activation of the new classifier. Defaults to `"softmax"`.

    Returns:
        A new Functional `keras.Model`.

    Raises:
        TypeError: If `model` is not a `keras.Model` or `cut` has an unsupported type.
        ValueError: If the model is not built or has no layer graph, `num_classes < 1`,
            `hidden` or `dropout` are invalid, or `cut` is out of range, unknown or at the
            output layer.

    Example:
    ```python
    import keras
    from transferkit import replace_head

    model = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)
    ])
    new = replace_head(model, 3)
    assert new.output_shape == (None, 3)
    ```
    """
    ensure_built(model)
    _require_graph(model, "replace_head")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
        )
    if isinstance(hidden, str) or not isinstance(hidden, Iterable):
        raise TypeError(
            f"`hidden` must be a sequence of ints (units), e.g. (128,). Received: hidden={hidden!r}"
        )
    hidden = tuple(hidden)
    if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"`hidden` must be positive ints (units). Received: hidden={hidden!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be a float in [0, 1). Received: dropout={dropout!r}")
    k = _resolve_cut(model, cut, "replace_head")
    clone = copy_model(model)
    inputs, x = _body(clone, k)
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="head_flatten")(x)
    for i, units in enumerate(hidden):
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"head_dropout_{i}")(x)
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense_{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation=activation, name="head_classifier")(x)
    return keras.Model(inputs, outputs, name=f"{model.name}_new_head")


def as_feature_extractor(
    model: Model, cut: Boundary | None = None, *, pooling: str | None = None
) -> Model:
    """A frozen model whose output is the activation of `model` at `cut`.

    The extractor is built from a *copy* of `model` (weights copied, not shared), and every
    layer of it is frozen, so BatchNormalization runs in inference mode. `model` itself is not
    mutated.

    Args:
        model: A built Functional or Sequential `keras.Model`.
        cut: None, int, str or `keras.layers.Layer`. The last layer kept (inclusive).
            Defaults to `None`: the input of the final classification layer, or the whole
            model if its output is not 2-D (a headless backbone, such as a keras-hub one).
        pooling: None, `"avg"` or `"max"`. Global pooling applied to a 4-D output
            (batch, height, width, channels). Defaults to `None`.

    Returns:
        A new, frozen Functional `keras.Model`.

    Raises:
        TypeError: If `model` is not a `keras.Model` or `cut` has an unsupported type.
        ValueError: If the model is not built or has no layer graph, `cut` is invalid or at
            the output layer, or `pooling` is not one of None, "avg", "max".

    Example:
    ```python
    import keras
    from transferkit import as_feature_extractor

    model = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)
    ])
    extractor = as_feature_extractor(model)
    assert extractor.output_shape == (None, 16) and not extractor.trainable_weights
    ```
    """
    ensure_built(model)
    _require_graph(model, "as_feature_extractor")
    if pooling not in (None, *_POOLING):
        raise ValueError(
            f"`pooling` must be one of None, 'avg', 'max'. Received: pooling={pooling!r}"
        )
    k = _resolve_cut(model, cut, "as_feature_extractor")
    clone = copy_model(model)
    inputs, x = _body(clone, k)
    if pooling is not None:
        if len(x.shape) != 4:
            raise ValueError(
                f"`pooling` needs a 4-D output (batch, height, width, channels); the output at "
                f"`cut` has shape {tuple(x.shape)}. Use pooling=None."
            )
        pool = (
            keras.layers.GlobalAveragePooling2D
            if pooling == "avg"
            else (keras.layers.GlobalMaxPooling2D)
        )
        x = pool(name=f"features_{pooling}_pool")(x)
    extractor = keras.Model(inputs, x, name=f"{model.name}_features")
    freeze(extractor)
    return extractor
