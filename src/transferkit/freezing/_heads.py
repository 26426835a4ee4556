"""New heads and feature extractors: `replace_head`, `as_feature_extractor`.

Both build a *new* model from a copy of the caller's model (weights copied, never shared), so
the caller's weights and trainable flags are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import keras

from .._validate import check_positive_int, is_int, is_real
from ..types import Model, Tensor
from ._copy import copy_model
from ._freeze import freeze
from ._layers import Boundary, LeafLayer, ensure_built, leaf_layers, resolve_boundary

_POOLING = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}


def _require_graph(model: Model, fn: str) -> None:
    ensure_built(model)
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


def _select_output(model: Model, output: int | str | None, fn: str) -> Model:
    """`model` itself (checked: built, with a layer graph), or for a multi-output model the
    single-output model `output` names.

    The selected model shares the caller's layers; callers copy it before changing anything.
    """
    _require_graph(model, fn)
    names = [str(t._keras_history[0].name) for t in model.outputs]
    if output is None:
        if len(names) == 1:
            return model
        raise ValueError(
            f"`{fn}` got model {model.name!r} with {len(names)} outputs ({', '.join(names)}), "
            "so it cannot tell which head to replace. Name the output the new model should "
            f"grow from: `output={names[0]!r}` or an index, e.g. `output=0`."
        )
    if is_int(output):
        if not -len(names) <= output < len(names):
            raise ValueError(
                f"`output` must be an index between {-len(names)} and {len(names) - 1} (the "
                f"model has outputs {names}). Received: output={output!r}"
            )
        index = int(output) % len(names)
    elif isinstance(output, str) and output in names:
        index = names.index(output)
    else:
        raise ValueError(
            f"`output` must be the name or index of one of the model's outputs {names}. "
            f"Received: output={output!r}"
        )
    if len(names) == 1:
        return model
    return keras.Model(model.inputs, model.outputs[index], name=f"{model.name}_{names[index]}")


def classifier_index(leaves: list[LeafLayer]) -> int:
    """Index of the final classification layer: the last leaf layer that has weights."""
    for leaf in reversed(leaves):
        if leaf.layer.weights:
            return leaf.index
    raise ValueError("The model has no layer with weights, so it has no classification layer.")


def default_cut(model: Model) -> int:
    """Number of leading leaf layers before the final classification layer."""
    return classifier_index(leaf_layers(model))


def resolve_cut(model: Model, cut: Boundary | None, fn: str) -> int:
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
    activation: str | None = "auto",
    output: int | str | None = None,
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
        activation: str or None. Activation of the new classifier: `"auto"` is softmax for
            several classes and sigmoid for `num_classes=1` (a binary head); None gives
            logits (`fine_tune` then trains with `from_logits=True`, and `metrics.evaluate`
            reads them as logits). Defaults to `"auto"`.
        output: int, str or None. For a model with several outputs, the output (index or
            layer name) whose branch the new head grows from. Defaults to `None` (the
            model's only output; a multi-output model is refused).

    Returns:
        A new Functional `keras.Model`.

    Raises:
        TypeError: If `model` is not a `keras.Model` or `cut` has an unsupported type.
        ValueError: If the model is not built or has no layer graph, `num_classes < 1`,
            `hidden` or `dropout` are invalid, `cut` is out of range, unknown or at the
            output layer, `activation="softmax"` with one class (always 1.0), or the model has
            several outputs and `output` does not name one.

    Example:
    ```python
    import keras
    from transferkit import replace_head

    model = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)
    ])
    new = replace_head(model, 3)
    assert new.output_shape == (None, 3)
    binary = replace_head(model, 1)  # one unit: a sigmoid, never a softmax
    assert binary.layers[-1].activation.__name__ == "sigmoid"
    ```
    """
    model = _select_output(model, output, "replace_head")
    num_classes = check_positive_int(num_classes, "num_classes")
    if activation == "auto":
        activation = "sigmoid" if num_classes == 1 else "softmax"
    elif activation == "softmax" and num_classes == 1:
        raise ValueError(
            "`activation='softmax'` over one unit always outputs 1.0, so the head could not "
            "learn. For a binary head use `activation='sigmoid'` (the default for "
            "num_classes=1) or None (logits), or `num_classes=2` with softmax."
        )
    if isinstance(hidden, str) or not isinstance(hidden, Iterable):
        raise TypeError(
            f"`hidden` must be a sequence of ints (units), e.g. (128,). Received: hidden={hidden!r}"
        )
    hidden = tuple(hidden)
    if any(not is_int(h) or h < 1 for h in hidden):
        raise ValueError(f"`hidden` must be positive ints (units). Received: hidden={hidden!r}")
    hidden = tuple(int(h) for h in hidden)
    if not is_real(dropout) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be a float in [0, 1). Received: dropout={dropout!r}")
    k = resolve_cut(model, cut, "replace_head")
    inputs, x = _body(copy_model(model), k)
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
    model: Model,
    *,
    cut: Boundary | None = None,
    pooling: str | None = None,
    output: int | str | None = None,
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
        output: int, str or None. For a multi-output model, the output (index or layer
            name) whose branch is cut. Defaults to `None` (the only output).

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
    model = _select_output(model, output, "as_feature_extractor")
    if pooling not in (None, *_POOLING):
        raise ValueError(
            f"`pooling` must be one of None, 'avg', 'max'. Received: pooling={pooling!r}"
        )
    k = resolve_cut(model, cut, "as_feature_extractor")
    inputs, x = _body(copy_model(model), k)
    if pooling is not None:
        if len(x.shape) != 4:
            raise ValueError(
                f"`pooling` needs a 4-D output (batch, height, width, channels); the output at "
                f"`cut` has shape {tuple(x.shape)}. Use pooling=None."
            )
        x = _POOLING[pooling](name=f"features_{pooling}_pool")(x)
    extractor = keras.Model(inputs, x, name=f"{model.name}_features")
    freeze(extractor)
    return extractor


NEW_HEAD_PREFIX = "head_"
"""`replace_head` names the layers it creates `head_*`: weights nobody pretrained."""


def pretrained_weights(model: Model) -> list[Any]:
    """The weights of `model`'s leaf layers except those `replace_head` created (`head_*`).

    `L2SP` anchors these to their starting values; a new head pays `beta` towards zero.
    """
    return [
        w
        for leaf in leaf_layers(model)
        if not leaf.layer.name.startswith(NEW_HEAD_PREFIX)
        for w in leaf.layer.weights
    ]


def cut_outputs(model: Model, cuts: Sequence[int], fn: str) -> Model:
    """A frozen copy of `model` with one output per cut: the activation after the first `k`
    leaf layers for each `k` in `cuts` (resolved counts), so one forward pass gives them all.

    `model` is not mutated (the outputs are those of a copy).
    """
    _require_graph(model, fn)
    clone = copy_model(model)
    outputs = [_body(clone, k)[1] for k in cuts]
    extractor = keras.Model(clone.inputs, outputs, name=f"{model.name}_cuts")
    freeze(extractor)
    return extractor
