"""Transfer learning with a `keras.applications` backbone on Fashion-MNIST.

The lab asked for "a pretrained model like VGG16, ResNet50 or MobileNet"; this example shows
the transferkit workflow on one:

1. Fashion-MNIST is resized to `--size` x `--size` RGB (`resize_images(..., rgb=True)`).
2. A Functional model is built around the backbone: `Input -> preprocessing (Rescaling to
   what the backbone expects) -> backbone(include_top=False) -> GlobalAveragePooling2D ->
   Dense(10, softmax)`.
3. `trainable_summary` lists every leaf layer *inside* the nested backbone with its trainable
   flag; `freeze(model, upto="block_13_expand")` (inside `tk.frozen`, so the flags come back)
   freezes by layer name, wherever the layer is nested.
4. A small `compare_strategies` run trains `full`, `partial` (frozen up to that layer) and
   `feature_extractor` (a linear probe on the pooled features; the frozen backbone runs once
   thanks to the activation cache) on a subset (`--train-size`, default 5000 images).

Partial-freezing boundaries (the last frozen layer):

* MobileNetV2: `block_13_expand` (the expansion convolution of the first block of the
  160-channel stage);
* ResNet50: `conv4_block6_out` (stages conv1-conv4 frozen, conv5 trains);
* EfficientNetB0: `block5c_add` (blocks 1-5 frozen, blocks 6-7 and the top train).

`--weights none` (default) starts from random weights and needs no internet; the comparison
then shows the mechanics, not the benefit, of transfer. `--weights imagenet` downloads the
ImageNet weights (about 9-100 MB) once; the MobileNetV2 weights are published for inputs of
96 pixels and up, so use `--size 96` with them (at 32 Keras warns and loads the 224-pixel
weights, which still work).

Usage:

    python examples/keras_applications.py                          # MobileNetV2, 32x32
    python examples/keras_applications.py --arch ResNet50 --epochs 5
    python examples/keras_applications.py --weights imagenet --size 96 --learning-rate 1e-4
    python examples/keras_applications.py --quick                  # seconds-long smoke run

Writes to `--output-dir` (default `runs/keras_applications/<arch>_<size>_<weights>`; `--quick`
writes to a `quick/` subfolder): `trainable_summary.txt`, `comparison.json`, `runs.csv`,
`summary.md`, `history.png`, `tradeoff.png` and the resumable log `runs.jsonl`.
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
import matplotlib  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import (  # noqa: E402
    FASHION_MNIST_CLASSES,
    lab_split,
    resize_images,
    stratified_subsample,
)
from transferkit.timing import machine_info  # noqa: E402

matplotlib.use("Agg")  # before anything imports pyplot: write PNGs, never open a window

SCRIPT = Path(__file__).stem
ARCHS = ("MobileNetV2", "ResNet50", "EfficientNetB0")
PARTIAL_BOUNDARY = {
    "MobileNetV2": "block_13_expand",
    "ResNet50": "conv4_block6_out",
    "EfficientNetB0": "block5c_add",
}


def preprocessing(arch: str) -> keras.layers.Layer:
    """A layer mapping images in [0, 1] to the input range the backbone was trained on.

    * MobileNetV2: [-1, 1] (`mobilenet_v2.preprocess_input`).
    * ResNet50: "caffe" mode, 0-255 minus the ImageNet BGR channel means. The RGB-to-BGR
      swap is a no-op here: grey images have three equal channels.
    * EfficientNetB0: 0-255; the backbone rescales and normalises inside.
    """
    if arch == "MobileNetV2":
        return keras.layers.Rescaling(2.0, offset=-1.0, name="preprocess")
    if arch == "ResNet50":
        return keras.layers.Rescaling(
            255.0, offset=[-103.939, -116.779, -123.68], name="preprocess"
        )
    return keras.layers.Rescaling(255.0, name="preprocess")


def build_model(arch: str, size: int, weights: str | None, num_classes: int) -> keras.Model:
    """Input -> preprocessing -> backbone(include_top=False) -> GAP -> Dense(softmax)."""
    backbone = getattr(keras.applications, arch)(
        include_top=False, weights=weights, input_shape=(size, size, 3)
    )
    inputs = keras.Input(shape=(size, size, 3), name="image")
    x = preprocessing(arch)(inputs)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"fashion_{arch.lower()}")


def abbreviated(summary: tk.TrainableSummary, around: str, keep: int = 3) -> str:
    """The first, last and boundary rows of a (long) trainable summary."""
    lines = str(summary).splitlines()
    header, rows, footer = lines[:3], lines[3:-1], lines[-1]
    boundary = next(
        (i for i, row in enumerate(summary.layers) if row.path.endswith("/" + around)), None
    )
    show = set(range(keep)) | set(range(len(rows) - keep, len(rows)))
    if boundary is not None:
        show |= set(range(max(boundary - 1, 0), min(boundary + 3, len(rows))))
    out, last = list(header), -1
    for i in sorted(show):
        if i != last + 1:
            out.append(f"  ... ({i - last - 1} rows)")
        out.append(rows[i])
        last = i
    return "\n".join([*out, footer])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Fine-tune a keras.applications backbone (MobileNetV2, ResNet50 or EfficientNetB0) "
            "on Fashion-MNIST resized to RGB: show trainable_summary and freezing by layer name "
            "inside the nested backbone, then compare full fine-tuning, partial freezing and a "
            "feature extractor with transferkit.compare_strategies."
        )
    )
    parser.add_argument(
        "--arch", choices=ARCHS, default="MobileNetV2", help="backbone (default: %(default)s)"
    )
    parser.add_argument(
        "--size",
        type=int,
        choices=(32, 96),
        default=32,
        help="image side in pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--weights",
        choices=("none", "imagenet"),
        default="none",
        help="backbone weights; 'imagenet' downloads them (default: %(default)s, offline)",
    )
    parser.add_argument(
        "--train-size", type=int, default=5000, help="training images (default: %(default)s)"
    )
    parser.add_argument(
        "--val-size", type=int, default=1000, help="validation images (default: %(default)s)"
    )
    parser.add_argument(
        "--test-size", type=int, default=2000, help="test images (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per strategy (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="batch size (default: %(default)s)"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="Adam learning rate (default: Adam's 0.001; try 1e-4 with --weights imagenet)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds (default: 1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="seconds-long smoke run: 256/128/128 images, 1 epoch, 1 seed (for CI)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help=(
            f"where to write results (default: runs/{SCRIPT}/<arch>_<size>_<weights>; "
            "--quick writes to OUTPUT_DIR/quick)"
        ),
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete OUTPUT_DIR/runs.jsonl first instead of resuming (implied by --quick)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory with the four Fashion-MNIST .gz files (default: standard locations)",
    )
    args = parser.parse_args(argv)
    for name in ("train_size", "val_size", "test_size", "epochs", "batch_size", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.output_dir is None:
        args.output_dir = Path("runs") / SCRIPT / f"{args.arch}_{args.size}_{args.weights}"
    if args.quick:
        args.train_size, args.val_size, args.test_size = 256, 128, 128
        args.epochs, args.seeds = 1, 1
        args.output_dir = args.output_dir / "quick"
        args.fresh = True  # a smoke run must train, never resume
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    if args.fresh:
        log.unlink(missing_ok=True)
    print(f"transferkit {tk.__version__}, Keras {keras.__version__} ({keras.backend.backend()})")

    # Data: a stratified subset of the lab's split, resized to size x size RGB.
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = lab_split(args.data_dir)
    sets = {}
    for name, (x, y), n in (
        ("train", (x_train, y_train), args.train_size),
        ("validation", (x_val, y_val), args.val_size),
        ("test", (x_test, y_test), args.test_size),
    ):
        x_sub, y_sub = stratified_subsample(x, y, min(n, len(x)), seed=0)
        sets[name] = (resize_images(x_sub, args.size, rgb=True), y_sub)
        print(f"{name}: {sets[name][0].shape} {sets[name][0].dtype}", flush=True)

    # Model: the backbone nested inside a Functional classifier.
    keras.utils.set_random_seed(0)
    weights = None if args.weights == "none" else "imagenet"
    model = build_model(args.arch, args.size, weights, num_classes=10)
    boundary = PARTIAL_BOUNDARY[args.arch]
    summary = tk.trainable_summary(model)
    print(
        f"\n{model.name}: {len(summary)} leaf layers (the backbone's layers count one by one), "
        f"{summary.trainable_params:,} trainable parameters\n"
    )

    # Freezing by name inside the nested backbone; `frozen` restores every flag afterwards.
    with tk.frozen(model, upto=boundary) as report:
        frozen_summary = tk.trainable_summary(model)
        print(f'freeze(model, upto="{boundary}"):\n{report}\n')
        print(abbreviated(frozen_summary, boundary))
    assert tk.trainable_summary(model).frozen_params == summary.frozen_params
    (out / "trainable_summary.txt").write_text(
        f"# Before freezing\n{summary}\n\n# With freeze(model, upto={boundary!r})\n"
        f"{frozen_summary}\n"
    )

    strategies: list[Any] = [
        "full",
        tk.PartialFreeze(upto=boundary),
        tk.FeatureExtractor(),  # frozen backbone + pooling, the classifier trains
    ]
    print(
        f"\nComparing {len(strategies)} strategies x {args.seeds} seed(s): {args.epochs} "
        f"epoch(s), batch size {args.batch_size}; log {log}",
        flush=True,
    )
    started = time.perf_counter()
    try:
        comparison = tk.compare_strategies(
            model,
            strategies,
            train=sets["train"],
            validation=sets["validation"],
            test=sets["test"],
            epochs=args.epochs,
            batch_size=args.batch_size,
            seeds=args.seeds,
            learning_rate=args.learning_rate,
            output=log,
            class_names=FASHION_MNIST_CLASSES,
            verbose=1,
        )
    except ValueError as err:
        if "different configuration" in str(err):
            sys.exit(f"{err}\nRerun with --fresh to discard the old runs.")
        raise
    elapsed = time.perf_counter() - started

    table = comparison.to_markdown(("accuracy", "f1_macro", "train_seconds"))
    params = {
        r.strategy: f"{r.timing.trainable_params:,} / {r.timing.total_params:,}"
        for r in comparison.runs
    }
    print(f"\nDone in {elapsed:.1f} s.\n\n{table}\n")
    for strategy, counts in params.items():
        print(f"  {strategy}: trainable / total parameters {counts}")

    comparison.to_json(out / "comparison.json")
    comparison.to_csv(out / "runs.csv")
    note = (
        "random initial weights: this shows the mechanics of the strategies, not the benefit "
        "of pretraining"
        if weights is None
        else "ImageNet weights"
    )
    (out / "summary.md").write_text(
        f"## {args.arch} on Fashion-MNIST ({args.size}x{args.size} RGB)\n\n"
        f"{args.train_size} training / {args.val_size} validation / {args.test_size} test "
        f"images, {args.epochs} epoch(s), batch size {args.batch_size}; backbone with {note}. "
        f"Partial freezing: every layer up to `{boundary}` frozen.\n\n{table}\n\n"
        + "\n".join(f"- {s}: trainable / total parameters {c}" for s, c in params.items())
        + "\n\n"
        + f"Produced by `python {' '.join(sys.argv)}` on {machine_info()}.\n"
    )
    import matplotlib.pyplot as plt

    plt.close(comparison.plot_history(out / "history.png"))
    plt.close(comparison.plot_tradeoff(out / "tradeoff.png"))
    print(f"Wrote trainable_summary.txt, comparison.json, runs.csv, summary.md, PNGs to {out}")


if __name__ == "__main__":
    main()
