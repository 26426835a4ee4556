"""The progress display of `compare_strategies`: plain lines in logs, in place in a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import sys
import termios
import threading

import pytest

import transferkit as tk
from _train_helpers import blobs, mlp, split
from transferkit.comparison._progress import RunProgress

TIMES = r" \| elapsed \d+:\d\d:\d\d \| ETA (\d+:\d\d:\d\d|unknown)$"


class FakeClock:
    """A clock the test moves by hand, so elapsed and ETA are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(progress: RunProgress, clock: FakeClock) -> None:
    """Three runs: a trained one of 10 s, a resumed one, a trained one of 30 s."""
    progress.start_run("full", 0)
    clock.now = 10.0
    progress.finish_run("test accuracy 0.9000")
    progress.resumed("full", 1, "resumed from runs.jsonl")
    progress.start_run("partial", 0)
    clock.now = 40.0
    progress.finish_run("test accuracy 0.8000")
    progress.close()


def test_plain_lines_count_runs_and_estimate_from_trained_runs_only(capsys):
    clock = FakeClock()
    drive(RunProgress(3, verbose=1, clock=clock), clock)
    assert capsys.readouterr().out.splitlines() == [
        "[1/3] full seed=0: training ... | elapsed 0:00:00 | ETA unknown",
        "[1/3] full seed=0: test accuracy 0.9000 | elapsed 0:00:10 | ETA 0:00:20",
        # The resumed run took no time and does not lower the mean (10 s): 1 run left.
        "[2/3] full seed=1: resumed from runs.jsonl | elapsed 0:00:10 | ETA 0:00:10",
        "[3/3] partial seed=0: training ... | elapsed 0:00:10 | ETA 0:00:10",
        "[3/3] partial seed=0: test accuracy 0.8000 | elapsed 0:00:40 | ETA 0:00:00",
        "[3/3] done: 2 trained, 1 resumed | elapsed 0:00:40 | ETA 0:00:00",
    ]


def test_runs_from_workers_estimate_from_the_time_between_arrivals(capsys):
    clock = FakeClock()
    progress = RunProgress(5, verbose=1, clock=clock)
    progress.resumed("full", 0, "resumed from runs.jsonl")
    clock.now = 12.0  # the first run arrives after 12 s (the workers started) ...
    progress.arrived("full", 1, "test accuracy 0.9000")
    clock.now = 14.0  # ... the second 2 s later, from the other worker
    progress.arrived("partial", 0, "test accuracy 0.8000")
    progress.close()
    assert capsys.readouterr().out.splitlines() == [
        "[1/5] full seed=0: resumed from runs.jsonl | elapsed 0:00:00 | ETA unknown",
        "[2/5] full seed=1: test accuracy 0.9000 | elapsed 0:00:12 | ETA 0:00:36",
        "[3/5] partial seed=0: test accuracy 0.8000 | elapsed 0:00:14 | ETA 0:00:14",
        "[3/5] done: 2 trained, 1 resumed | elapsed 0:00:14 | ETA 0:00:14",
    ]


def test_verbose_0_prints_nothing(capsys):
    clock = FakeClock()
    drive(RunProgress(3, verbose=0, clock=clock), clock)
    assert capsys.readouterr().out == ""


def test_compare_strategies_logs_plain_lines_even_with_force_color(capsys, monkeypatch, tmp_path):
    # Many CI systems set FORCE_COLOR, which rich alone would take for a terminal.
    monkeypatch.setenv("FORCE_COLOR", "1")
    train, test = split(*blobs(96), 64, 32)
    model, strategies = mlp(), ["full"]
    kwargs = dict(train=train, validation=None, test=test, epochs=1, output=tmp_path / "r.jsonl")
    tk.compare_strategies(model, strategies, seeds=1, verbose=0, **kwargs)
    assert capsys.readouterr().out == ""
    tk.compare_strategies(model, strategies, seeds=2, verbose=1, **kwargs)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    lines = out.splitlines()
    assert all(re.search(TIMES, line) for line in lines), lines
    starts = [
        "[1/2] full seed=0: resumed from ",
        "[2/2] full seed=1: training ...",
        "[2/2] full seed=1: test accuracy ",
        "[2/2] done: 1 trained, 1 resumed",
    ]
    assert len(lines) == len(starts), lines
    for line, start in zip(lines, starts, strict=True):
        assert line.startswith(start), (line, start)
    assert "ETA unknown" in lines[1] and "ETA unknown" not in lines[2]


def run_on_a_terminal(monkeypatch, verbose: int) -> str:
    """Drive a `RunProgress` with stdout on a pseudo-terminal; what the terminal received."""
    master, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    terminal = os.fdopen(follower, "w", encoding="utf-8")
    chunks: list[bytes] = []

    def drain() -> None:  # read as it is written: a full pty buffer would block the writer
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal was closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setattr(sys, "stdout", terminal)
    clock = FakeClock()
    try:
        drive(RunProgress(3, verbose=verbose, clock=clock), clock)
        terminal.flush()
    finally:
        monkeypatch.undo()
        terminal.close()
        reader.join(timeout=10)
        os.close(master)
    return b"".join(chunks).decode("utf-8")


def test_a_terminal_gets_one_bar_updated_in_place(monkeypatch):
    out = run_on_a_terminal(monkeypatch, verbose=1)
    assert "\r\x1b[2K" in out  # the bar line erased and redrawn: in place
    assert "training partial seed=0" in out  # the current run, on the bar
    assert re.search(r"\b3/3\b", out)
    # Each finished run leaves one line above the bar (not a line per start).
    assert out.count("full seed=0: test accuracy 0.9000") == 1
    assert "full seed=0: training ..." not in out
    assert "[3/3] done: 2 trained, 1 resumed" in out
    assert out.rfind("\x1b[?25h") > out.rfind("\x1b[?25l")  # the cursor is shown at the end


@pytest.mark.parametrize("verbose", [0, 2])
def test_a_terminal_gets_plain_lines_at_verbose_2_and_nothing_at_0(monkeypatch, verbose):
    # At verbose=2 Keras prints its own progress bars, so ours must not redraw over them.
    out = run_on_a_terminal(monkeypatch, verbose=verbose)
    assert "\x1b" not in out
    assert out.count("\n") == (6 if verbose else 0)
