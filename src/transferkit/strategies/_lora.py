"""LoRA: low-rank adapters on the frozen body, trained with the head, then merged away.

Built on Keras's own `enable_lora` (`Dense`, `EinsumDense`, `Embedding`, `Conv1D`, `Conv2D`,
`Conv3D` in Keras 3): each adapted layer computes with `kernel + alpha / rank * A @ B`, where
the pretrained `kernel` (and the bias) stay frozen and only `A` and `B` train. After training,
`finish` folds the adapters into plain kernels with Keras's own merge (the one `model.save`
uses), so the returned model is ordinary Keras: it saves and loads without transferkit.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import keras

from .._validate import check_list, check_positive_int, is_real
from ..freezing._copy import has_own_config, own_layers, same_layers
from ..freezing._freeze import RecompileWarning, freeze
from ..freezing._heads import resolve_cut
from ..freezing._layers import Boundary, all_layers, leaf_layers
from ..types import Layer, Model
from ._strategy import BaseStrategy, fmt_boundary

SUPPORTED = "Dense, EinsumDense, Embedding, Conv1D, Conv2D and Conv3D"
"""The Keras layers that have `enable_lora` (any layer that defines it is supported too)."""

_LORA_KEYS = ("lora_rank", "lora_alpha")


def unsupported_reason(layer: Layer) -> str | None:
    """Why `layer` cannot get LoRA adapters, or `None` if it can."""
    if isinstance(layer, keras.Model) or not callable(getattr(layer, "enable_lora", None)):
        return f"{type(layer).__name__} has no `enable_lora` (supported: {SUPPORTED})"
    if getattr(layer, "lora_enabled", False):
        return "it already has LoRA adapters (merge or remove them first)"
    if getattr(layer, "kernel_constraint", None) is not None:
        return "it has a `kernel_constraint`, which Keras's LoRA does not support"
    if getattr(layer, "quantization_mode", None) is not None:
        return "it is quantized"
    return None


def _sublayers(model: Model, k: int) -> list[tuple[str, Layer]]:
    """`(path, layer)` of every layer inside the first `k` leaf layers (composites walked)."""
    out: list[tuple[str, Layer]] = []
    for leaf in leaf_layers(model)[:k]:
        for sub in leaf.layer._flatten_layers(include_self=True, recursive=True):
            out.append((leaf.path if sub is leaf.layer else f"{leaf.path}/{sub.name}", sub))
    return out


@dataclass(frozen=True, kw_only=True)
class LoRA(BaseStrategy):
    """Low-rank adaptation: the body is frozen, low-rank adapters on it and the head train.

    Every supported layer of the body (the leaf layers up to `cut`) gets Keras's LoRA adapters
    (`layer.enable_lora(rank, lora_alpha=alpha)`): its kernel becomes
    `kernel + alpha / rank * A @ B` with the pretrained kernel, its bias and every other body
    weight (BatchNormalization in inference mode included) frozen; only `A`, `B` and the head
    (the layers after `cut`) train. `B` starts at zero, so training starts from exactly the
    pretrained function. After training (`finish`), the adapters are merged into the kernels
    of a plain copy of the model (Keras's own merge, the one `model.save` uses), so
    `FitResult.model` is ordinary Keras that saves and loads without transferkit and predicts
    as the adapted model did; its body is frozen and its head trainable. The run's
    `timing.trainable_params` counts the adapters and the head, measured before the merge.
    Adapted layers train, so the frozen-prefix cache stops at the first of them. With
    `fine_tune(..., copy=False)` the adapters are added to the caller's model itself, and the
    merged copy is returned.

    Args:
        rank: int. The adapters' rank (`A` is `fan_in x rank`, `B` is `rank x units`).
            Defaults to `4`.
        alpha: float or None. Scales the update by `alpha / rank`; `None` means `rank` (a
            scale of 1, Keras's default). Defaults to `None`.
        targets: Sequence of layer names (or `/`-joined paths) and layer classes, or None.
            The body layers to adapt; `None` adapts every supported one. Defaults to `None`.
        cut: None, int, str or Layer. The last body layer; the layers after it form the head
            and train fully. Defaults to `None`: everything before the classification layer.
        epochs, optimizer, learning_rate, label: As in `FullFineTune`.

    Example:
    ```python
    import keras
    from transferkit import LoRA

    model = keras.Sequential([
        keras.Input((16,)), keras.layers.Dense(32, name="body"), keras.layers.Dense(3),
    ])
    strategy = LoRA(rank=2)
    adapted = strategy.prepare(model)
    assert adapted.get_layer("body").lora_enabled
    assert len(adapted.trainable_weights) == 4  # A, B and the head's kernel and bias
    merged = strategy.finish(adapted)
    assert "lora_rank" not in merged.get_layer("body").get_config()
    ```
    """

    search_multipliers: ClassVar[tuple[float, ...]] = (1.0, 3.0, 10.0, 30.0)  # few parameters

    rank: int = 4
    alpha: float | None = None
    targets: Sequence[str | type] | None = None
    cut: Boundary | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.rank, "rank")
        if self.alpha is not None and not (is_real(self.alpha) and 0 < self.alpha < math.inf):
            raise ValueError(
                "`alpha` must be a positive number (or None for `rank`). "
                f"Received: alpha={self.alpha!r}"
            )
        check_list(
            self.targets, "targets", "a non-empty list of layer names and layer classes", _is_target
        )

    def _describe(self) -> str:
        parts = [f"rank={self.rank}"]
        if self.alpha is not None:
            parts.append(f"alpha={self.alpha:g}")
        if self.targets is not None:
            parts.append(f"targets=[{', '.join(_target_name(t) for t in self.targets)}]")
        if self.cut is not None:
            parts.append(f"cut={fmt_boundary(self.cut)}")
        return f"lora({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (rank, alpha and targets included)."""
        d = super().to_dict()
        if self.targets is not None:
            d["targets"] = [_target_name(t) for t in self.targets]
        return d

    def plan(self, model: Model) -> tuple[int, list[Layer]]:
        """The body's leaf-layer count and the layers that get adapters; raises if none."""
        k = resolve_cut(model, self.cut, "LoRA")
        body = _sublayers(model, k)
        if self.targets is None:
            chosen = [layer for _, layer in body if unsupported_reason(layer) is None]
        else:  # each layer once, in the order the targets name them
            chosen = list(
                dict.fromkeys(layer for t in self.targets for layer in _matches(model, body, k, t))
            )
        if not chosen:
            kinds = sorted({type(layer).__name__ for _, layer in body})
            raise ValueError(
                f"`LoRA` found no layer to adapt in the body of model {model.name!r} (its first "
                f"{k} leaf layers, before the head). LoRA supports the layers with Keras's "
                f"`enable_lora`: {SUPPORTED}, without a kernel constraint. The body has: "
                f"{', '.join(kinds) or 'no layers'}."
            )
        for layer in chosen:
            self._check_rank(layer)
        return k, chosen

    def _check_rank(self, layer: Layer) -> None:
        """Refuse a rank above what `layer`'s kernel can have: the update would not be low-rank."""
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            kernel = getattr(layer, "embeddings", None)
        if kernel is None:
            return
        shape = tuple(int(d) for d in kernel.shape)
        if self.rank > (most := min(math.prod(shape[:-1]), shape[-1])):
            raise ValueError(
                f"`LoRA(rank={self.rank})` is larger than the layer {layer.name!r} allows: its "
                f"kernel {shape} has rank at most {most}, so the adapter would add more "
                f"parameters than the layer has and no low-rank constraint. Use rank <= {most}, "
                "or leave the layer out with `targets=`."
            )

    def validate(self, model: Model) -> None:
        """Resolve `cut` and `targets` on `model`, raising if nothing can be adapted."""
        self.plan(model)

    def prepare(self, model: Model) -> Model:
        """Freeze the body of `model`, add adapters to the chosen layers and return it."""
        k, chosen = self.plan(model)
        freeze(model, k)
        train = {id(v) for v in model.trainable_weights}  # the head's weights
        for layer in chosen:
            before = {id(v) for v in layer.weights}
            layer.enable_lora(self.rank, lora_alpha=self.alpha)
            train |= {id(v) for v in layer.weights if id(v) not in before}
        _set_flags(model, chosen, train)
        return model

    def finish(self, model: Model) -> Model:
        """A plain copy of `model` with the adapters merged into its kernels (body frozen)."""
        merged = merge_lora(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecompileWarning)  # keras-hub tasks self-compile
            freeze(merged, resolve_cut(merged, self.cut, "LoRA"))
        return merged


def _is_target(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, type) and issubclass(value, keras.layers.Layer)
    )


def _target_name(target: str | type) -> str:
    return target if isinstance(target, str) else target.__name__


def _matches(model: Model, body: list[tuple[str, Layer]], k: int, target: str | type) -> list[Any]:
    """The body layers `target` names (a name, path or class); raises if it names none."""
    found: list[Layer]
    if isinstance(target, type):
        found = [layer for _, layer in body if isinstance(layer, target)]
    else:
        found = [layer for path, layer in body if target in (path, layer.name)]
    if not found:
        if isinstance(target, str) and any(
            target in (leaf.path, leaf.name) for leaf in leaf_layers(model)[k:]
        ):
            raise ValueError(
                f"`targets` names {target!r}, which is in the head (after `cut`): the head "
                f"trains fully. Name a body layer or move `cut`. Received: targets={target!r}"
            )
        names = [name for path, layer in body for name in (path, layer.name)]
        close = difflib.get_close_matches(_target_name(target), names, n=3)
        hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"`targets` entry {_target_name(target)!r} matches no layer in the body of model "
            f"{model.name!r}.{hint} Received: targets={target!r}"
        )
    for layer in found:
        if (reason := unsupported_reason(layer)) is not None and not isinstance(target, type):
            raise ValueError(
                f"`targets` names layer {layer.name!r}, which cannot get LoRA adapters: "
                f"{reason}. Received: targets={target!r}"
            )
    return [layer for layer in found if unsupported_reason(layer) is None]


def _parents(model: Model) -> dict[int, Layer]:
    """Each sublayer's enclosing layer, by `id` (the first one, for a shared layer)."""
    out: dict[int, Layer] = {}
    for layer in all_layers(model):
        for sub in layer._flatten_layers(include_self=False, recursive=False):
            out.setdefault(id(sub), layer)
    return out


def _set_flags(model: Model, adapted: list[Layer], train: set[int]) -> None:
    """Make exactly the variables in `train` trainable, keeping frozen layers in inference.

    Layers that were trainable (the head), the adapted layers and their enclosing layers are
    set trainable, every other layer not (so BatchNormalization stays in inference mode);
    parents first, as Keras's setter cascades. Then every variable gets its own flag, which
    freezes an adapted layer's kernel and bias.
    """
    keep = {id(layer) for layer in all_layers(model) if layer.trainable}
    parents = _parents(model)
    for layer in adapted:
        node: Layer | None = layer
        while node is not None:
            keep.add(id(node))
            node = parents.get(id(node))
    for layer in all_layers(model):
        layer.trainable = id(layer) in keep
    for v in model.weights:
        v.trainable = id(v) in train


def _without_lora(layer: Layer) -> Layer:
    config = layer.get_config()
    for key in _LORA_KEYS:
        config.pop(key, None)
    return type(layer).from_config(config)


def _plain_twin(model: Model) -> Model:
    """`model`'s architecture with fresh weights and no LoRA (keras-hub tasks keep their class)."""
    if has_own_config(model):
        try:  # keras-hub models rebuild from their constructor arguments, without adapters
            twin = type(model).from_config(model.get_config())
        except Exception:  # the config may not round-trip: clone the layer graph instead
            twin = None
        if twin is not None and twin.built and same_layers(model, twin):
            return twin
    clone = keras.models.clone_model(model, clone_function=_without_lora, recursive=True)
    if not clone.built:
        clone.build(model.input_shape)
    return clone


def merge_lora(model: Model) -> Model:
    """A plain copy of `model` whose kernels have the LoRA adapters merged in.

    Each layer's variables go through Keras's `save_own_variables` (which merges an adapted
    layer's kernel as `kernel + alpha / rank * A @ B`, exactly the kernel its forward pass
    uses) into the twin's `load_own_variables`. `model` is not mutated; flags are all trainable.
    """
    twin = _plain_twin(model)
    if not same_layers(model, twin):
        raise ValueError(
            f"Cannot merge the LoRA adapters of model {model.name!r}: its copy without adapters "
            "has a different layer structure."
        )
    for source, target in zip(own_layers(model), own_layers(twin), strict=True):
        store: dict[str, Any] = {}
        source.save_own_variables(store)
        # Fresh buffers: on JAX `assign` keeps the very array, and `fit` may donate it.
        target.load_own_variables(
            {key: keras.ops.copy(getattr(v, "value", v)) for key, v in store.items()}
        )
    return twin
