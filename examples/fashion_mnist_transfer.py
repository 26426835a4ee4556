"""Real transfer learning on Fashion-MNIST: pretrain on five classes, transfer to the other five.

The lab compared its strategies starting from a *random* CNN, where freezing layers can only
hurt. This example does what the lab's theory describes:

1. **Source task.** The lab's CNN is trained on Fashion-MNIST classes 0-4 (T-shirt/top,
   Trouser, Pullover, Dress, Coat) with a 5-way head.
2. **Target task.** Classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot), disjoint from the
   source classes. `replace_head(pretrained, 5)` gives the pretrained body a new 5-way head.
3. **Label budgets.** For each budget (default 50, 500 and 5000 labelled target images, drawn
   with `stratified_subsample`), one `compare_strategies` call trains

   * `full`: every layer, from the pretrained weights;
   * `partial(upto=2)`: the first convolution/pooling pair frozen, the second convolution
     and the dense layers adapt (`--partial-upto 4` freezes both pairs, the lab's
     `layers[:4]`, which on this CNN freezes the same weights as the feature extractor);
   * `feature_extractor(cut='flatten')`: the convolutional body frozen, the pretrained
     `Dense(128)` and the new head train;
   * `lp_ft`: LP-FT, a linear probe of the new head on the frozen body (a fifth of the
     epochs, on cached features), then every layer at half the learning rate;
   * `gradual`: gradual unfreezing: the head, then one more block (conv/pool pair) from the
     top each epoch, then everything;
   * `discriminative`: fastai's `fine_tune`: one head epoch on the frozen body, then every
     layer with discriminative rates (`lr_mult=100`: the first block at 1/100 of the head's
     rate, spread geometrically) at half the learning rate;
   * `layer_decay`: full fine-tuning with layer-wise rate decay 0.75 per block from the top
     (BEiT/MAE);
   * `l2sp`: full fine-tuning with the L2-SP penalty (`L2SP()`: the transferred weights are
     pulled towards their pretrained values instead of towards zero);
   * `lora`: Keras's LoRA adapters (rank 4) on the frozen body's convolution and dense layers,
     with the head; the adapters are merged into plain weights after training;
   * `scratch`: the same architecture from freshly initialised weights, the no-transfer
     control; the summary reports every strategy's gain over it, paired by seed.

Every transfer strategy and seed starts from the same pretrained weights; the seed changes the
order of the training batches (and, for `scratch`, its random initial weights). The target
validation set (1000 images of classes 5-9 held out of the training images, never in a budget)
drives early stopping (on small data the better practice: each phase stops after `--patience`
epochs without a lower validation loss and keeps its best epoch's weights) and
`Comparison.best`; the test set is never used to choose anything. The test set is the official test
images of classes 5-9 (5000).

Training schedule (chosen so each run sees enough optimizer steps, and the full run takes a
few minutes on a 2-core CPU): budgets up to 100 images train 30 epochs with batch size 16,
up to 1000 images 15 epochs with batch size 32, larger budgets 10 epochs with batch size 64;
`--epochs` overrides the epochs of every budget. Source pretraining: 5 epochs, batch size 64.

Usage:

    python examples/fashion_mnist_transfer.py                       # budgets 50 500 5000
    python examples/fashion_mnist_transfer.py --budgets 20 100 1000 --seeds 5
    python examples/fashion_mnist_transfer.py --quick               # minute-long smoke run

Writes to `--output-dir` (default `runs/fashion_mnist_transfer`; `--quick` writes to its
`quick/` subfolder): `results.json`, `runs.csv`, `summary.md`, `accuracy_vs_budget.png`, the
pretrained `source_model.keras` and one resumable log `runs_budget<N>.jsonl` per budget (a
rerun with the same settings resumes; `--fresh` starts over).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no retracing notices per run

import keras  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import (  # noqa: E402
    FASHION_MNIST_CLASSES,
    load_fashion_mnist,
    stratified_subsample,
    subset_classes,
    to_float_images,
    train_val_test_split,
)
from transferkit.metrics import evaluate  # noqa: E402
from transferkit.models import lab_cnn  # noqa: E402
from transferkit.timing import machine_info  # noqa: E402

matplotlib.use("Agg")  # before anything imports pyplot: write PNGs, never open a window

SCRIPT = Path(__file__).stem
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
TARGET_NAMES = tuple(FASHION_MNIST_CLASSES[c] for c in TARGET_CLASSES)
Pair = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]


NOTE = (
    "\nNote: with --partial-upto 4 (the lab's `layers[:4]`), partial(upto=4) and "
    "feature_extractor(cut='flatten') freeze exactly the same weights on this CNN (Flatten has "
    "none), so their results coincide; --partial-upto 2 trains the second convolution too.\n"
)


def schedule(budget: int, epochs_override: int | None) -> tuple[int, int]:
    """(epochs, batch size) for a label budget; see the module docstring."""
    if budget <= 100:
        epochs, batch_size = 30, 16
    elif budget <= 1000:
        epochs, batch_size = 15, 32
    else:
        epochs, batch_size = 10, 64
    return (epochs_override or epochs), batch_size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Pretrain the lab CNN on Fashion-MNIST classes 0-4, transfer it to classes 5-9 at "
            "several label budgets and compare full fine-tuning, partial freezing, a feature "
            "extractor and training from scratch (mean ± std over seeds)."
        ),
    )
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=[50, 500, 5000],
        help="labelled target training images per comparison (default: %(default)s)",
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="number of seeds (0..N-1) (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs for every budget (default: 30 up to 100 images, 15 up to 1000, else 10)",
    )
    parser.add_argument(
        "--source-epochs",
        type=int,
        default=5,
        help="epochs of pretraining on classes 0-4 (default: %(default)s)",
    )
    parser.add_argument(
        "--partial-upto",
        type=int,
        default=2,
        help=(
            "leaf layers PartialFreeze freezes (2 = the first conv/pool pair, so the second "
            "convolution adapts to the target task; 4 = both pairs, the lab's choice, which on "
            "this CNN freezes the same weights as the feature extractor; default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=5,
        help=(
            "early stopping: stop a phase after this many epochs without a lower validation "
            "loss and keep its best epoch's weights; 0 turns it off (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--val-size",
        type=int,
        default=1000,
        help="held-out target validation images (default: %(default)s)",
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="seed of the validation split and the budgets (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "minute-long smoke run: 1000 source images, budget 50, 4 epochs, 1 seed, halving, "
            "250 test images (for CI)"
        ),
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("runs") / SCRIPT,
        help="where to write results (default: %(default)s; --quick writes to OUTPUT_DIR/quick)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="discard saved runs and the saved source model (implied by --quick)",
    )
    parser.add_argument(
        "--learning-rates",
        choices=("auto", "none"),
        default="auto",
        help=(
            "auto: each strategy at its own learning rate, chosen on validation from its "
            "grid (compare_strategies(learning_rates='auto')); none: every strategy at Adam's "
            "1e-3 (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--search",
        choices=("grid", "halving"),
        default="grid",
        help="grid: every rate trains all epochs; halving: successive halving (default: grid)",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGY_NAMES,
        default=list(STRATEGY_NAMES),
        help="strategies to compare, scratch included (default: all ten)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory with the four Fashion-MNIST .gz files (default: standard locations)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        # 4 epochs: the fewest that gradual unfreezing's four phases need
        # one budget: every strategy searches its learning rate (by halving), ~30 short runs
        args.budgets, args.seeds, args.epochs, args.source_epochs = [50], 1, 4, 1
        args.val_size, args.search = 100, "halving"
        args.output_dir = args.output_dir / "quick"
        args.fresh = True  # a smoke run must train, never resume
    if args.patience < 0:
        parser.error("--patience must be at least 0")
    for name in ("seeds", "source_epochs", "val_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 1 <= args.partial_upto <= 6:
        parser.error("--partial-upto must be between 1 and 6 (the CNN has 7 leaf layers)")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if len(set(args.budgets)) != len(args.budgets) or min(args.budgets) < len(TARGET_CLASSES):
        parser.error(f"--budgets must be distinct and at least {len(TARGET_CLASSES)} each")
    args.budgets = sorted(args.budgets)
    return args


STRATEGY_NAMES = (
    "full",
    "partial",
    "feature_extractor",
    "lp_ft",
    "gradual",
    "discriminative",
    "layer_decay",
    "l2sp",
    "lora",
    "scratch",
)


@dataclass(frozen=True)
class Tasks:
    """Source training/validation data, the target pool, validation and test data."""

    source_train: Pair
    source_val: Pair
    source_test: Pair
    target_pool: Pair
    target_val: Pair
    target_test: Pair


def make_tasks(args: argparse.Namespace) -> Tasks:
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.data_dir)
    x_train_f, x_test_f = to_float_images(x_train), to_float_images(x_test)
    source = subset_classes(x_train_f, y_train.astype(np.int64), SOURCE_CLASSES)
    target = subset_classes(x_train_f, y_train.astype(np.int64), TARGET_CLASSES)
    source_test = subset_classes(x_test_f, y_test.astype(np.int64), SOURCE_CLASSES)
    target_test = subset_classes(x_test_f, y_test.astype(np.int64), TARGET_CLASSES)
    if args.quick:
        source = stratified_subsample(*source, 1000, seed=args.data_seed)
        source_test = stratified_subsample(*source_test, 250, seed=args.data_seed)
        target_test = stratified_subsample(*target_test, 250, seed=args.data_seed)
    source_split = train_val_test_split(*source, val_size=0.1, seed=args.data_seed)
    target_split = train_val_test_split(*target, val_size=args.val_size, seed=args.data_seed)
    if max(args.budgets) > len(target_split.train[0]):
        sys.exit(f"--budgets: at most {len(target_split.train[0])} target training images exist.")
    return Tasks(
        source_train=source_split.train,
        source_val=source_split.validation,
        source_test=source_test,
        target_pool=target_split.train,
        target_val=target_split.validation,
        target_test=target_test,
    )


def pretrain(args: argparse.Namespace, tasks: Tasks) -> tuple[keras.Model, dict[str, Any]]:
    """Train (or load) the source model; return it and a record of how it did."""
    saved = args.output_dir / "source_model.keras"
    record_path = args.output_dir / "source_model.json"
    if saved.exists() and record_path.exists():
        print(f"Loading the pretrained source model from {saved}", flush=True)
        return keras.saving.load_model(saved), json.loads(record_path.read_text())
    print(
        f"Pretraining the lab CNN on classes 0-4: {len(tasks.source_train[0])} images, "
        f"{args.source_epochs} epoch(s), batch size 64 ...",
        flush=True,
    )
    result = tk.fine_tune(
        lab_cnn(len(SOURCE_CLASSES), name="source_cnn"),
        tasks.source_train,
        validation=tasks.source_val,
        epochs=args.source_epochs,
        batch_size=64,
        seed=args.data_seed,
        verbose=2,
    )
    metrics = evaluate(result.model, *tasks.source_test)
    record = {
        "classes": list(SOURCE_CLASSES),
        "train_samples": len(tasks.source_train[0]),
        "epochs": args.source_epochs,
        "train_seconds": result.timing.train_seconds,
        "test_accuracy": metrics.accuracy,
    }
    result.model.save(saved)
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return result.model, record


def fmt_mean_std(values: Sequence[float], digits: int = 4) -> str:
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def budget_table(budget: int, epochs: int, batch_size: int, comparison: tk.Comparison) -> str:
    gains = {row.strategy: row for row in comparison.gains()}
    lines = [
        f"### {budget} labelled target images (up to {epochs} epochs, batch size {batch_size})",
        "",
        "| strategy | runs | learning rate | test accuracy (mean ± std) | gain over scratch "
        "[95% CI] | macro F1 (mean ± std) | epochs run | trainable params | train s (mean) |",
        "|---|---:|---|---|---|---|---:|---:|---:|",
    ]
    for strategy in comparison.strategies:
        runs = comparison.runs_of(strategy)
        acc = [r.metrics.accuracy for r in runs]
        f1 = [r.metrics.f1_macro for r in runs]
        secs = float(np.mean([r.timing.train_seconds for r in runs]))
        ran = float(np.mean([r.epochs for r in runs]))
        params = max(r.timing.trainable_params for r in runs)
        g = gains.get(strategy)
        gain = "—" if g is None else f"{g.mean:+.4f}"
        if g is not None and g.n > 1:
            gain += f" [{g.ci95_low:+.4f}, {g.ci95_high:+.4f}]"
        lines.append(
            f"| {strategy} | {len(runs)} | {comparison.rate_text(strategy)} | {fmt_mean_std(acc)} "
            f"| {gain} | {fmt_mean_std(f1)} "
            f"| {ran:.1f} | {params:,} | {secs:.1f} |"
        )
    best = comparison.best()
    best_acc = np.mean([r.metrics.accuracy for r in comparison.runs_of(best)])
    lines += [
        "",
        f"Chosen on validation accuracy (`Comparison.best()`): **{best}** "
        f"(test accuracy {best_acc:.4f}). Runs trained in all, every rate of every grid: "
        f"{len(comparison.runs)}.",
    ]
    return "\n".join(lines)


def plot(results: dict[int, tk.Comparison], path: Path) -> None:
    """Test accuracy (left) and training time (right) against the label budget."""
    import matplotlib.pyplot as plt

    budgets = sorted(results)
    strategies = results[budgets[0]].strategies
    fig, (ax, ax_time) = plt.subplots(1, 2, figsize=(12, 4.4))
    styles = ["-", "--", ":", "-."]
    for i, strategy in enumerate(strategies):
        style = {"marker": "osD^vP"[i % 6], "linestyle": styles[i % len(styles)], "label": strategy}
        for axis, value in (
            (ax, lambda r: r.metrics.accuracy),
            (ax_time, lambda r: r.timing.train_seconds),
        ):
            runs = [[value(r) for r in results[b].runs_of(strategy)] for b in budgets]
            means = [float(np.mean(v)) for v in runs]
            stds = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in runs]
            axis.errorbar(budgets, means, yerr=stds, capsize=4, **style)
    for axis in (ax, ax_time):
        axis.set_xscale("log")
        axis.minorticks_off()
        axis.set_xticks(budgets, [str(b) for b in budgets])
        axis.set_xlabel("labelled target training images (classes 5-9)")
        axis.grid(alpha=0.3)
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title("Transfer from Fashion-MNIST classes 0-4 to 5-9")
    ax_time.set_ylabel("training seconds per run (mean ± std)")
    ax_time.set_title("Training time per run")
    ax_time.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for stale in [*out.glob("runs_budget*.jsonl"), *out.glob("source_model.*")]:
            stale.unlink(missing_ok=True)
        for models in out.glob("runs_budget*.models"):  # the kept models of those runs
            for kept in models.glob("*.keras"):
                kept.unlink()
            models.rmdir()
    print(f"transferkit {tk.__version__}, Keras {keras.__version__} ({keras.backend.backend()})")
    started = time.perf_counter()

    tasks = make_tasks(args)
    print(
        f"Source: {len(tasks.source_train[0])} train / {len(tasks.source_val[0])} val images "
        f"(classes 0-4). Target: pool {len(tasks.target_pool[0])}, val "
        f"{len(tasks.target_val[0])}, test {len(tasks.target_test[0])} images (classes 5-9).",
        flush=True,
    )
    source_model, source_record = pretrain(args, tasks)
    print(f"Source model: test accuracy on classes 0-4 {source_record['test_accuracy']:.4f}")
    keras.utils.set_random_seed(args.data_seed)
    start = tk.replace_head(source_model, len(TARGET_CLASSES))  # new, random 5-way head

    results: dict[int, tk.Comparison] = {}
    tables: list[str] = []
    for budget in args.budgets:
        epochs, batch_size = schedule(budget, args.epochs)
        every: dict[str, Any] = {
            "full": "full",
            "partial": tk.PartialFreeze(upto=args.partial_upto),
            "feature_extractor": tk.FeatureExtractor(cut="flatten"),
            # LP-FT: the probe trains on cached features, so a fifth of the epochs costs little
            "lp_ft": tk.LinearProbeThenFineTune(probe_epochs=max(1, epochs // 5), label="lp_ft"),
            "gradual": tk.GradualUnfreeze(label="gradual"),  # head, then one conv block at a time
            # fastai fine_tune: a head epoch, then slice(lr / 100, lr) over the blocks
            "discriminative": "discriminative",
            "layer_decay": "layer_decay",  # BEiT/MAE: lr x 0.75^(blocks from the top)
            "l2sp": tk.FullFineTune(regularizer=tk.L2SP(), label="l2sp"),  # pull towards pretrained
            "lora": "lora",  # low-rank adapters on the frozen body, merged after training
            "scratch": "scratch",  # the control: the same network from fresh random weights
        }
        strategies = [every[name] for name in args.strategies]
        train = stratified_subsample(*tasks.target_pool, budget, seed=args.data_seed)
        log = out / f"runs_budget{budget}.jsonl"
        print(
            f"\n=== Budget {budget}: {epochs} epochs, batch size {batch_size}, "
            f"{args.seeds} seed(s); log {log} ===",
            flush=True,
        )
        try:
            comparison = tk.compare_strategies(
                start,
                strategies,
                train=train,
                validation=tasks.target_val,
                test=tasks.target_test,
                epochs=epochs,
                batch_size=batch_size,
                seeds=args.seeds,
                output=log,
                class_names=TARGET_NAMES,
                verbose=1,
                early_stopping=None if args.patience == 0 else args.patience,
                learning_rates=None if args.learning_rates == "none" else "auto",
                search=args.search,
            )
        except ValueError as err:
            if "different configuration" in str(err):
                sys.exit(f"{err}\nRerun with --fresh to discard the old runs.")
            raise
        results[budget] = comparison
        tables.append(budget_table(budget, epochs, batch_size, comparison))
        print("\n" + tables[-1], flush=True)

    elapsed = time.perf_counter() - started
    print(f"\nAll budgets done in {elapsed:.1f} s.\n")
    print("\n\n".join(tables))
    if args.partial_upto == 4:
        print(NOTE)

    (out / "results.json").write_text(
        json.dumps(
            {
                "source": source_record,
                "target_classes": list(TARGET_CLASSES),
                "seeds": args.seeds,
                "budgets": {
                    str(b): {
                        "epochs": schedule(b, args.epochs)[0],
                        "batch_size": schedule(b, args.epochs)[1],
                        **c.to_dict(),
                    }
                    for b, c in results.items()
                },
            },
            indent=2,
        )
        + "\n"
    )
    rows: list[list[str]] = []
    for budget, comparison in results.items():
        reader = csv.reader(io.StringIO(comparison.to_csv()))
        header = next(reader)
        rows += [[str(budget), *row] for row in reader]
    with open(out / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["budget", *header])
        writer.writerows(rows)
    (out / "summary.md").write_text(
        "## Transfer from Fashion-MNIST classes 0-4 to classes 5-9\n\n"
        f"Source model: the lab CNN trained {source_record['epochs']} epoch(s) on "
        f"{source_record['train_samples']} images of classes 0-4, test accuracy "
        f"{source_record['test_accuracy']:.4f} on them. Target test set: "
        f"{len(tasks.target_test[0])} official test images of classes 5-9. Transfer "
        "strategies start from the same pretrained weights; seeds change the batch order "
        "(and the initial weights of `scratch`).\n\n"
        + "\n\n".join(tables)
        + "\n"
        + (NOTE if args.partial_upto == 4 else "")
        + "\n\n"
        + f"Produced by `python {' '.join(sys.argv)}` on {machine_info()}.\n"
    )
    plot(results, out / "accuracy_vs_budget.png")
    for budget, comparison in results.items():  # one comparison, so one report, per budget
        title = f"Transfer from Fashion-MNIST classes 0-4 to 5-9, {budget} labels"
        comparison.to_html(out / f"report_{budget}.html", title=title)
    print(
        "\nWrote results.json, runs.csv, summary.md, accuracy_vs_budget.png, "
        f"report_<budget>.html to {out}"
    )


if __name__ == "__main__":
    main()
