"""Progress of a long run, wherever its output goes.

On a terminal: rich's live line (bar, simulated time, versions, accuracy, simulated seconds per wall
second, ETA). Anywhere else — a CI log, ``nohup … > log 2>&1`` — a plain line at most every few
seconds of wall time (``FLEETSIM_PROGRESS_EVERY_S``, default 5), because a live bar written to a file
is one unreadable line at the end. The same plain lines go to the run folder's ``progress.log``, so
a run started in the background can be followed with ``tail -f``. ``--quiet`` silences the console
lines only. Progress goes to stderr; stdout keeps the summary (and machine-readable output).

Wall time is only displayed, never fed back into the simulation: traces stay a function of the
scenario and seed.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

EVERY_ENV = "FLEETSIM_PROGRESS_EVERY_S"
DEFAULT_EVERY_S = 5.0
LOG_NAME = "progress.log"
MARKER_FILE = ".fleetsim-run"  # simulator.output.folder.MARKER_FILE: only a folder fleetsim made gets a log


def duration_text(seconds: float) -> str:
    """Wall durations a person reads: 42 s, 3 min 05 s, 2 h 07 min."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def every_s_from_env() -> float:
    try:
        value = float(os.environ.get(EVERY_ENV, DEFAULT_EVERY_S))
    except ValueError:
        return DEFAULT_EVERY_S
    return value if math.isfinite(value) and value >= 0 else DEFAULT_EVERY_S


class RunProgress:
    """The ``progress(sim_s, versions, accuracy)`` callback the engine calls, shown as `mode` says.

    `mode` is ``live`` (rich bar), ``plain`` (a line every `every_s`) or ``quiet`` (nothing on the
    console). `run_dir` is asked for lazily: the run folder exists only once the run is under way.
    """

    def __init__(self, horizon_s: float | None, max_versions: int | None, *, mode: str, console: Console,
                 run_dir: Callable[[], Path | None] | None = None, every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.horizon_s, self.max_versions, self.mode, self.console = horizon_s, max_versions, mode, console
        self.every_s = every_s_from_env() if every_s is None else every_s
        self.clock = clock
        self._run_dir = run_dir
        self._log: TextIO | None = None
        self._log_tried = False
        self._start: float | None = None
        self._last_shown: float | None = None
        self._state: tuple[float, int, float | None] | None = None
        self._shown_state: tuple[float, int, float | None] | None = None
        self._shown_eta = False  # the last line written carried an ETA: stop() must write a final one
        self._bar: Progress | None = None
        self._task = None

    # ------------------------------------------------------------------ figures

    def fraction(self, sim_s: float, versions: int) -> float | None:
        """How far the run is towards its stop bound (the nearer of time and versions), 0..1."""
        parts = []
        if self.horizon_s:
            parts.append(sim_s / self.horizon_s)
        if self.max_versions:
            parts.append(versions / self.max_versions)
        return min(1.0, max(parts)) if parts else None

    def line(self, sim_s: float, versions: int, accuracy: float | None, elapsed_s: float,
             final: bool = False) -> str:
        """The plain progress line: simulated time, versions, accuracy, rate, elapsed and ETA (none on the
        final line: a run that stopped early, at its target accuracy, has nothing left to wait for)."""
        parts = [f"t={sim_s:,.0f} s" + (f" of {self.horizon_s:,.0f} s" if self.horizon_s else "")]
        done = self.fraction(sim_s, versions)
        if done is not None:
            parts[0] += f" ({100 * done:.1f} %)"
        parts.append(f"v{versions}" + (f"/{self.max_versions}" if self.max_versions else ""))
        if accuracy is not None:
            parts.append(f"acc {accuracy:.3f}")
        if elapsed_s > 0:
            parts.append(f"{sim_s / elapsed_s:,.1f} sim-s/wall-s")
        parts.append(f"elapsed {duration_text(elapsed_s)}")
        if done is not None and 0 < done < 1 and not final:
            parts.append(f"ETA {duration_text(elapsed_s * (1 - done) / done)}")
        return "progress: " + " · ".join(parts)

    # ------------------------------------------------------------------ the callback

    def __call__(self, sim_s: float, versions: int, accuracy: float | None) -> None:
        now = self.clock()
        if self._start is None:
            self._start = now
        self._state = (sim_s, versions, accuracy)
        elapsed = now - self._start
        if self.mode == "live":
            self._live(sim_s, versions, accuracy, elapsed)
        due = self._last_shown is None or now - self._last_shown >= self.every_s
        if due:
            self._last_shown = now
            self._emit(self.line(sim_s, versions, accuracy, elapsed))

    def _emit(self, text: str) -> None:
        self._shown_state = self._state
        self._shown_eta = " · ETA " in text
        if self.mode == "plain":
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        log = self._open_log()
        if log is not None:
            try:
                log.write(text + "\n")
                log.flush()
            except OSError:
                self._close_log()

    def _open_log(self) -> TextIO | None:
        if self._log is None and not self._log_tried and self._run_dir is not None:
            self._log_tried = True
            folder = self._run_dir()
            if folder is not None and (folder / MARKER_FILE).exists():
                try:
                    self._log = open(folder / LOG_NAME, "a", encoding="utf-8")  # noqa: SIM115 - held for the run
                except OSError:
                    self._log = None
        return self._log

    def _close_log(self) -> None:
        if self._log is not None:
            try:
                self._log.close()
            except OSError:
                pass
        self._log = None

    def _live(self, sim_s: float, versions: int, accuracy: float | None, elapsed: float) -> None:
        if self._bar is None:  # only once the run is under way: input errors print without a stray bar
            self._bar = Progress(
                TextColumn("[bold]simulating[/]"), BarColumn(), TextColumn("{task.fields[sim]}"),
                TextColumn("v{task.fields[versions]}"), TextColumn("{task.fields[acc]}"),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"), TimeElapsedColumn(),
                console=self.console, transient=False)
            self._task = self._bar.add_task("run", total=1.0, sim="", versions=0, acc="", rate="", eta="")
            self._bar.start()
        done = self.fraction(sim_s, versions)
        eta = f"ETA {duration_text(elapsed * (1 - done) / done)}" if done and done < 1 else ""
        self._bar.update(self._task, completed=done or 0.0, sim=f"t={sim_s:,.0f} s", versions=versions,
                         acc=f"acc {accuracy:.3f}" if accuracy is not None else "",
                         rate=f"{sim_s / elapsed:,.1f} sim-s/s" if elapsed > 0 else "", eta=eta)

    def stop(self) -> None:
        """End the display with the final state and no ETA (the run has ended, whatever its fraction).

        The live bar's eta field is cleared before it stops (its last frame stays on the terminal). A
        final plain line (console and progress.log) is written unless the last line already showed this
        state without an ETA: a state the throttled callback printed just before stop() still carried
        an ETA, so it is written once more, final."""
        if self._bar is not None:
            self._bar.update(self._task, eta="")
            self._bar.stop()
        if self._state is not None and self._start is not None and (
                self._state != self._shown_state or self._shown_eta):
            self._emit(self.line(*self._state, self.clock() - self._start, final=True))
        self._close_log()


def choose_mode(quiet: bool, console: Console) -> str:
    """quiet with --quiet; a live bar on a terminal; plain lines anywhere else."""
    if quiet:
        return "quiet"
    return "live" if console.is_terminal else "plain"
