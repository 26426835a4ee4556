"""Transfer learning with a keras-hub backbone and `ImageClassifier` on Fashion-MNIST.

keras-hub's presets are downloaded from Kaggle or Hugging Face; this example needs no network.
It builds a small keras-hub backbone from its constructor (random weights), pretrains it
itself, and transfers it:

1. Fashion-MNIST is resized to 32 x 32 RGB (`resize_images(..., rgb=True)`).
2. **Source task.** `keras_hub.models.ImageClassifier(backbone=..., num_classes=5,
   preprocessor=None)` is trained on classes 0-4 (T-shirt/top ... Coat) with `fine_tune`;
   the trained model is still an `ImageClassifier` (transferkit copies keras-hub models
   through their own config, so they keep their class).
3. **Target task.** A new `ImageClassifier` with a fresh 5-way head is put around a copy of
   the pretrained backbone for classes 5-9 (Sandal ... Ankle boot): keras-hub's way of
   replacing the head.
4. `trainable_summary` shows every leaf layer inside the backbone with its trainable flag
   while the model is frozen (inside `tk.frozen`, so the flags come back) up to a stage
   boundary, by layer name:

   * ResNet (`--family resnet`): `stack0_block0_out`, the output of the first stage;
   * MobileNet (`--family mobilenet`): `block_1_1`, the end of the first inverted-residual
     stage.
5. `compare_strategies` trains `full`, `partial` (frozen up to that boundary) and
   `feature_extractor` (backbone, pooling and the zero-rate dropout frozen and cached; only
   the `predictions` layer trains) on `--train-size` labelled target images.

Usage:

    python examples/keras_hub_backbone.py                          # ResNet, 1000 labels
    python examples/keras_hub_backbone.py --family mobilenet --epochs 10
    python examples/keras_hub_backbone.py --quick                  # about a minute, for CI

Needs `pip install "transferkit[hub]"`. Writes to `--output-dir` (default
`runs/keras_hub_backbone/<family>`; `--quick` writes to its `quick/` subfolder):
`trainable_summary.txt`, `comparison.json`, `runs.csv`, `summary.md` and the resumable
log `runs.jsonl`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no retracing notices per run

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import (  # noqa: E402
    FASHION_MNIST_CLASSES,
    load_fashion_mnist,
    resize_images,
    stratified_subsample,
    subset_classes,
    to_float_images,
    train_val_test_split,
)
from transferkit.metrics import evaluate  # noqa: E402
from transferkit.timing import machine_info  # noqa: E402

SCRIPT = Path(__file__).stem
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
SHAPE = (32, 32, 3)
Pair = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]

# The last frozen layer of `partial`: the end of the first stage of each family.
BOUNDARY = {"resnet": "stack0_block0_out", "mobilenet": "block_1_1"}


def backbone(family: str) -> Any:
    """A small keras-hub backbone with random weights (no preset download)."""
    if family == "resnet":  # keras-hub requires 64 filters in the first stack
        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[64],
            input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 128],
            stackwise_num_blocks=[1, 1],
            stackwise_num_strides=[1, 2],
            block_type="basic_block",
            image_shape=SHAPE,
            name="resnet",
        )
    return keras_hub.models.MobileNetBackbone(
        stackwise_expansion=[[16, 72], [96, 96]],
        stackwise_num_blocks=[2, 2],
        stackwise_num_filters=[[16, 24], [40, 40]],
        stackwise_kernel_size=[[3, 3], [5, 5]],
        stackwise_num_strides=[[2, 1], [2, 1]],
        stackwise_se_ratio=[[None, None], [0.25, 0.25]],
        stackwise_activation=[["relu", "relu"], ["hard_swish", "hard_swish"]],
        stackwise_padding=[[1, 1], [2, 2]],
        output_num_filters=96,
        depthwise_filters=16,
        depthwise_stride=1,
        depthwise_residual=False,
        last_layer_filter=96,
        image_shape=SHAPE,
        name="mobilenet",
    )


def classifier(body: Any, name: str) -> Any:
    """keras-hub's image classifier: backbone -> global average pooling -> Dense (logits)."""
    return keras_hub.models.ImageClassifier(
        backbone=body, num_classes=5, preprocessor=None, name=name
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Pretrain a small keras-hub backbone on Fashion-MNIST classes 0-4, then compare "
            "full fine-tuning, partial freezing at a stage boundary and a feature extractor "
            "on classes 5-9 with transferkit.compare_strategies."
        )
    )
    parser.add_argument("--family", choices=sorted(BOUNDARY), default="resnet")
    parser.add_argument("--source-size", type=int, default=10000, help="source images")
    parser.add_argument("--source-epochs", type=int, default=3, help="pretraining epochs")
    parser.add_argument("--train-size", type=int, default=1000, help="labelled target images")
    parser.add_argument("--test-size", type=int, default=2000, help="target test images")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per strategy")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1")
    parser.add_argument("--data-dir", type=Path, default=None, help="Fashion-MNIST .gz files")
    parser.add_argument("--fresh", action="store_true", help="discard saved runs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run for CI: 500 source images, 100 target labels, 1 epoch, 1 seed",
    )
    parser.add_argument("--output-dir", type=Path, default=None, help="where to write results")
    args = parser.parse_args(argv)
    if args.quick:
        args.source_size, args.source_epochs, args.train_size = 500, 1, 100
        args.test_size, args.epochs, args.seeds, args.fresh = 100, 1, 1, True
    for name in ("source_size", "source_epochs", "train_size", "test_size", "epochs", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.output_dir is None:
        args.output_dir = Path("runs") / SCRIPT / args.family
    if args.quick:
        args.output_dir = args.output_dir / "quick"
    return args


def rgb32(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return resize_images(to_float_images(x), SHAPE[0], rgb=True)


def make_data(args: argparse.Namespace) -> tuple[Pair, Pair, Pair, Pair]:
    """Source train, target train, target validation and target test, 32 x 32 RGB in [0, 1]."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.data_dir)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    source = subset_classes(x_train, y_train, SOURCE_CLASSES)
    target = subset_classes(x_train, y_train, TARGET_CLASSES)
    test = subset_classes(x_test, y_test, TARGET_CLASSES)
    source = stratified_subsample(*source, min(args.source_size, len(source[0])), seed=0)
    split = train_val_test_split(*target, val_size=max(args.train_size // 5, 50), seed=0)
    train = stratified_subsample(*split.train, args.train_size, seed=0)
    val = stratified_subsample(*split.validation, len(split.validation[0]), seed=0)
    test = stratified_subsample(*test, min(args.test_size, len(test[0])), seed=0)
    return tuple((rgb32(x), y) for x, y in (source, train, val, test))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    if args.fresh:
        log.unlink(missing_ok=True)
    print(
        f"transferkit {tk.__version__}, keras-hub {keras_hub.__version__}, Keras "
        f"{keras.__version__} ({keras.backend.backend()})",
        flush=True,
    )
    started = time.perf_counter()
    source, train, val, test = make_data(args)

    keras.utils.set_random_seed(0)
    print(f"Pretraining a keras-hub {args.family} on {len(source[0])} images of classes 0-4 ...")
    pretrained = tk.fine_tune(
        classifier(backbone(args.family), "source"),
        source,
        epochs=args.source_epochs,
        batch_size=64,
        seed=0,
        verbose=2,
    ).model
    assert isinstance(pretrained, keras_hub.models.ImageClassifier)  # still a keras-hub task

    # keras-hub's way to replace the head: a new ImageClassifier around the backbone (a copy,
    # so the pretrained model keeps its own).
    start = classifier(tk.copy_model(pretrained.backbone), "target")
    boundary = BOUNDARY[args.family]
    with tk.frozen(start, upto=boundary):
        summary = str(tk.trainable_summary(start))
    (out / "trainable_summary.txt").write_text(summary + "\n")
    print(f"\nFrozen up to {boundary!r} (as `partial` trains it):\n{summary}\n", flush=True)

    strategies: list[Any] = ["full", tk.PartialFreeze(upto=boundary), "feature_extractor"]
    try:
        comparison = tk.compare_strategies(
            start,
            strategies,
            train=train,
            validation=val,
            test=test,
            epochs=args.epochs,
            batch_size=32,
            seeds=args.seeds,
            output=log,
            class_names=[FASHION_MNIST_CLASSES[c] for c in TARGET_CLASSES],
            verbose=1,
        )
    except ValueError as err:
        if "different configuration" in str(err):
            sys.exit(f"{err}\nRerun with --fresh to discard the old runs.")
        raise
    source_accuracy = evaluate(pretrained, source[0][:1000], source[1][:1000]).accuracy
    table = comparison.to_markdown()
    comparison.to_json(out / "comparison.json")
    comparison.to_csv(out / "runs.csv")
    (out / "summary.md").write_text(
        f"## keras-hub {args.family}: Fashion-MNIST classes 0-4 to 5-9\n\n"
        f"Pretrained {args.source_epochs} epoch(s) on {len(source[0])} source images "
        f"(accuracy {source_accuracy:.4f} on 1000 of them); {len(train[0])} labelled target "
        f"images, {args.epochs} epoch(s) per strategy, {len(test[0])} test images.\n\n"
        f"{table}\n\nProduced by `python {' '.join(sys.argv)}` on {machine_info()}.\n"
    )
    print(f"\n{table}\n\nDone in {time.perf_counter() - started:.1f} s; wrote results to {out}")


if __name__ == "__main__":
    main()
