"""`RunProgress`: where a comparison stands (runs done of total, elapsed, ETA) as it runs."""

from __future__ import annotations

import datetime
import importlib.util
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task
from rich.text import Text


def _clock_text(seconds: float) -> str:
    """`seconds` as `H:MM:SS`."""
    return str(datetime.timedelta(seconds=round(seconds)))


class _CallColumn(ProgressColumn):
    """A column showing what a callable returns now (elapsed and ETA)."""

    def __init__(self, text: Callable[[], str]) -> None:
        super().__init__()
        self._text = text

    def render(self, task: Task) -> Text:
        return Text(self._text())


def _updates_in_place(console: Console) -> bool:
    """Whether a live display can redraw itself on `console`."""
    if console.is_jupyter:  # rich draws notebooks' live displays with ipywidgets
        return importlib.util.find_spec("ipywidgets") is not None
    # `isatty` as well: rich counts FORCE_COLOR=1 (set in many CI systems) as a terminal, and
    # a log must never receive cursor movements.
    return sys.stdout.isatty() and console.is_terminal and not console.is_dumb_terminal


class RunProgress:
    """One overall progress display for the runs of `compare_strategies`.

    In a terminal (or a notebook with ipywidgets) a rich bar updates in place, each finished
    run leaving a line above it; elsewhere, and with `verbose=2` (Keras's bars share the
    terminal), each run's start and end print one plain line. Lines show `[i/n]`, the elapsed
    time and an ETA. The bar is refreshed on events only, never from a thread, and redirects
    nothing, so a run that raises leaves nothing running behind it.
    """

    def __init__(
        self, total: int, *, verbose: int = 1, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.total = total
        self.verbose = verbose
        self._clock = clock
        self._began = self._run_began = clock()
        self._tag = ""
        self._done = 0
        self._resumed = 0
        self._seconds: list[float] = []
        self._bar: Progress | None = None
        console = Console()
        if verbose == 1 and _updates_in_place(console):
            self._bar = Progress(
                "{task.description}",
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                _CallColumn(self._times),
                console=console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task("starting", total=total)
            self._bar.start()
            console.show_cursor(True)  # a run that raises must not leave the cursor hidden

    def eta_seconds(self) -> float | None:
        """Mean wall time of the trained runs times the runs left; `None` before the first."""
        if not self._seconds:
            return None
        elapsed_in_run = self._clock() - self._run_began if self._tag else 0.0
        mean = sum(self._seconds) / len(self._seconds)
        return max(0.0, mean * (self.total - self._done) - elapsed_in_run)

    def _times(self) -> str:
        eta = self.eta_seconds()
        eta_text = "unknown" if eta is None else _clock_text(eta)
        return f"elapsed {_clock_text(self._clock() - self._began)} | ETA {eta_text}"

    def _line(self, index: int, text: str) -> None:
        self.note(f"[{index}/{self.total}] {text} | {self._times()}")

    def _refresh(self, description: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done, description=description)
            self._bar.refresh()

    def note(self, text: str) -> None:
        """A plain line of its own, e.g. what a learning-rate search will cost."""
        if self._bar is not None:
            self._bar.console.print(Text(text))
        elif self.verbose:
            print(text, flush=True)

    def start_run(self, strategy: str, seed: int) -> None:
        """A run starts training."""
        self._tag = f"{strategy} seed={seed}"
        self._run_began = self._clock()
        if self._bar is not None:
            self._refresh(f"training {self._tag}")
        else:
            self._line(self._done + 1, f"{self._tag}: training ...")

    def finish_run(self, summary_text: str) -> None:
        """The run started last finished; `summary_text` says how it did."""
        self._seconds.append(self._clock() - self._run_began)
        self._done += 1
        tag, self._tag = self._tag, ""
        self._line(self._done, f"{tag}: {summary_text}")
        self._refresh("")

    def arrived(self, strategy: str, seed: int, summary_text: str) -> None:
        """A run trained by an executor's worker finished: the ETA counts the time between
        arrivals, so it holds however many run at once."""
        now = self._clock()
        self._seconds.append(now - self._run_began)
        self._run_began = now
        self._done += 1
        self._line(self._done, f"{strategy} seed={seed}: {summary_text}")
        self._refresh("training on the executor")

    def resumed(self, strategy: str, seed: int, summary_text: str) -> None:
        """A run was read back from the output file instead of trained."""
        self._done += 1
        self._resumed += 1
        self._line(self._done, f"{strategy} seed={seed}: {summary_text}")
        self._refresh("")

    def close(self) -> None:
        """Print the final line and stop the display."""
        if self.verbose:
            trained = self._done - self._resumed
            self._line(self._done, f"done: {trained} trained, {self._resumed} resumed")
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
