"""The Python entry point, for notebooks: ``simulator.run(path_or_scenario) -> Run``.

A :class:`Run` is the run folder plus its summary, with the traces as pandas DataFrames loaded on
first access — the same files any other tool reads.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from simulator.output.checkpoint import CHECKPOINT_FILE, RUN_OPTIONS_FILE, load_checkpoint, read_run_options, write_run_options
from simulator.config.input_files import read_input_text
from simulator.config.loading import load_yaml_model, validate_data
from simulator.config.scenario import Scenario, load_scenario_file
from simulator.engine.resolved import resolved_document
from simulator.engine.simulation import ProgressFn, Simulation
from simulator.errors import InputError, RunError
from simulator import numerics
from simulator.engine.failure import RunFailed, RunInterrupted, preparing_failure
from simulator.output.folder import ClaimedFolder, claim_for_resume, claim_run_dir, remove_run_files, write_yaml
from simulator.server.registry import add_plugin_paths
from simulator.trace.recorder import read_table


@dataclass
class Run:
    """A finished (or killed) run, read from its folder."""

    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, run_dir: str | Path) -> "Run":
        run_dir = Path(run_dir)
        from simulator.report.loading import read_summary  # the size-checked reader reports use too

        return cls(run_dir, read_summary(run_dir / "summary.json"))

    @cached_property
    def events(self) -> pd.DataFrame:
        return read_table(self.run_dir, "events")

    @cached_property
    def updates(self) -> pd.DataFrame:
        return read_table(self.run_dir, "updates")

    @cached_property
    def devices(self) -> pd.DataFrame:
        return read_table(self.run_dir, "devices")

    @cached_property
    def evals(self) -> pd.DataFrame:
        return read_table(self.run_dir, "evals")

    @cached_property
    def clients(self) -> pd.DataFrame:
        """Each client's shard size and label histogram."""
        return pd.read_parquet(self.run_dir / "clients.parquet")

    @cached_property
    def versions(self) -> pd.DataFrame:
        return read_table(self.run_dir, "versions")

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML (InputError naming file, field, value on any problem)."""
    return load_scenario_file(path)


def check_seed(seed: int | None, field: str = "seed") -> None:
    """A seed override must be what the scenario's `seed` accepts (SeedSequence refuses negatives)."""
    if seed is not None and (isinstance(seed, bool) or not (isinstance(seed, int) and 0 <= seed < 2**63)):
        raise InputError("not a valid seed", field=field, value=seed, accepted="an integer from 0 to 2**63 - 1")


def resolve_run_dir(scenario: Scenario, out: str | Path | None) -> Path:
    if out is not None:
        return Path(out)
    return Path(scenario.output.folder) / (scenario.output.run_name or scenario.name)


def run(
    scenario_or_path: Scenario | dict[str, Any] | str | Path,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    timing_only: bool = False,
    force: bool = False,
    executor: Any = None,
    progress: ProgressFn | None = None,
    report: bool | None = None,
    checkpoint_every_s: float | None = None,
    before_start: Callable[[Simulation], None] | None = None,
) -> Run:
    """Run a scenario and return its :class:`Run`.

    ``out`` is the run folder (default: ``output.folder/run_name``); an existing non-empty folder is
    refused unless ``force``, which replaces only a run folder fleetsim wrote (marker ``.fleetsim-run``),
    deleting only the files fleetsim wrote in it, and only once the new run has something to show.
    ``seed`` overrides the scenario's seed. ``checkpoint_every_s`` saves a checkpoint every so many
    simulated seconds, from which :func:`resume` continues a killed run. A failing plug-in, a full
    disk or a bug raises :class:`~simulator.errors.RunError` after the traces and summary so far are
    written; Ctrl-C raises KeyboardInterrupt likewise. ``before_start(simulation)`` is called once the
    simulation is built (its groups' plans known) and its folder claimed, before simulated time starts:
    the CLI warns there of a model that fits no device, instead of after a run's wait.
    """
    if checkpoint_every_s is not None and (isinstance(checkpoint_every_s, bool) or not checkpoint_every_s > 0):
        raise InputError("the checkpoint interval must be positive", field="--checkpoint-every",
                         value=checkpoint_every_s, accepted="a number of simulated seconds > 0")
    file: str | None = None
    base_dir = Path.cwd()
    if isinstance(scenario_or_path, (str, Path)):
        file = str(scenario_or_path)
        base_dir = Path(scenario_or_path).resolve().parent
        add_plugin_paths(base_dir, Path.cwd())  # module:Class plug-ins beside the scenario, as sweeps do
        scenario = load_scenario(scenario_or_path)
    elif isinstance(scenario_or_path, dict):
        scenario = validate_data(scenario_or_path, Scenario)
    else:
        scenario = scenario_or_path
    if seed is not None:
        check_seed(seed)
        scenario = scenario.model_copy(update={"seed": seed})
    timing_only = timing_only or scenario.timing_only
    if timing_only and not scenario.timing_only:  # the run folder's scenario.yaml records what ran:
        scenario = scenario.model_copy(update={"timing_only": True})  # run again, it times, not trains
    try:
        simulation = Simulation(scenario, Path("."), scenario_file=file, base_dir=base_dir,
                                timing_only=timing_only, executor=executor, progress=progress,
                                checkpoint_every_s=checkpoint_every_s)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plug-in's code failing while being sized or built
        raise preparing_failure(exc, scenario) from None
    folder = claim_run_dir(resolve_run_dir(scenario, out), force, scenario_file=file)
    try:
        simulation.run_dir = folder.path
        write_yaml(folder.path / "scenario.yaml", resolved_document(scenario))
        write_run_options(folder.path, {"base_dir": str(base_dir), "timing_only": timing_only,
                                        "checkpoint_every_s": checkpoint_every_s, "scenario_file": file,
                                        "numerics": numerics.PIN.as_record()})  # the kernels training used
    except BaseException as exc:
        folder.finish(keep=False)
        if isinstance(exc, OSError):
            raise RunError(f"the run folder {folder.path} could not be written ({exc.strerror or exc}); "
                           "nothing was run") from None
        raise
    _before_start(before_start, simulation, folder)
    want_report = report if report is not None else scenario.output.report
    return _execute(simulation, folder, want_report)


def _before_start(hook: Callable[[Simulation], None] | None, simulation: Simulation, folder: ClaimedFolder) -> None:
    """Run the caller's hook; if it raises, the claimed folder is given back as it was (nothing ran)."""
    if hook is None:
        return
    try:
        hook(simulation)
    except BaseException:
        folder.finish(keep=False)
        raise


def _progressed(summary: dict[str, Any]) -> bool:
    """The run has something to show: simulated time passed or a model version was made."""
    return bool(summary.get("makespan_s", 0) or summary.get("versions", 0))


def _execute(simulation: Simulation, folder: ClaimedFolder, want_report: bool) -> Run:
    """Run and write the report. On Ctrl-C or a failure keep the traces and summary and write a
    partial report — unless the run replaced a previous one and has nothing to show yet, in which
    case the previous run is put back as it was."""
    run_dir = folder.path
    try:
        outcome = simulation.run()
    except RunInterrupted as stop:
        keep = folder.previous is None or _progressed(stop.outcome.summary)
        if keep and want_report:
            _try_report(run_dir)
        folder.finish(keep)
        detail = (f"partial traces in {run_dir}" if keep else
                  f"nothing was simulated yet, so the previous run in {run_dir} was kept as it was")
        raise KeyboardInterrupt(f"run interrupted; {detail}") from None
    except RunFailed as failed:
        raise _failed(folder, failed, want_report) from None
    except BaseException as exc:
        folder.finish(keep=False)
        if isinstance(exc, OSError):
            raise RunError(f"the run folder {run_dir} could not be written ({exc.strerror or exc})") from None
        if isinstance(exc, KeyboardInterrupt):  # while the run was still being set up
            kept = (f"the previous run in {run_dir} was kept as it was" if folder.previous is not None
                    else "nothing was simulated")
            raise KeyboardInterrupt(f"run interrupted before it started; {kept}") from None
        raise
    report_error = None
    try:
        if want_report:
            from simulator.report import write_run_report

            write_run_report(run_dir)
    except OSError as exc:
        report_error = exc
    finally:
        folder.finish(keep=True)
    if report_error is not None:
        raise RunError(f"the run finished and its traces and summary.json are in {run_dir}, but report.html "
                       f"could not be written ({report_error.strerror or report_error})")
    return Run(run_dir, outcome.summary)


def _try_report(run_dir: Path) -> bool:
    from simulator.report import write_run_report

    try:
        write_run_report(run_dir)
        return True
    except Exception:  # noqa: BLE001 - a partial report is a courtesy: its failure must not hide the run's
        return False


def _failed(folder: ClaimedFolder, failed: RunFailed, want_report: bool) -> Exception:
    """Finish the folder after a failed run; the exception to raise (RunError, or the InputError)."""
    failure, summary, run_dir = failed.failure, failed.outcome.summary, folder.path
    keep = folder.previous is None or (_progressed(summary) and failure.kind != "write")
    if keep:
        try:
            (run_dir / "error.txt").write_text(failure.traceback_text, encoding="utf-8")
        except OSError:
            pass
        reported = want_report and _try_report(run_dir)
        kept = [name for name, there in (("its traces", True), ("summary.json", (run_dir / "summary.json").exists()),
                                         ("a partial report.html", reported), ("the traceback in error.txt",
                                                                              (run_dir / "error.txt").exists()))
                if there]
        stopped = f"The run stopped at simulated time {float(summary.get('makespan_s', 0.0)):,.1f} s"
        listed = ", ".join(kept[:-1]) + f" and {kept[-1]}" if len(kept) > 1 else kept[0]
        why = ("stop_reason in summary.json says why" if (run_dir / "summary.json").exists()
               else "summary.json could not be written")
        tail = f"{stopped}; {listed} are kept in {run_dir} ({why})"
    else:
        why = "the new run could not be written" if failure.kind == "write" else "the new run had nothing to show yet"
        tail = f"The previous run in {run_dir} was kept as it was ({why})"
    folder.finish(keep)
    if failure.kind == "input" and failure.input_error is not None:
        err = failure.input_error
        return InputError(f"{err.problem} ({tail})", file=err.file, field=err.field, value=err.value,
                          accepted=err.accepted)
    return RunError(f"{failure.message}. {tail}.")


def _refuse_finished(run_dir: Path) -> None:
    """A finished run has nothing to resume (resuming it used to re-run it from t = 0)."""
    path = run_dir / "summary.json"
    if not path.exists():
        return
    try:
        summary = json.loads(read_input_text(path, "the summary.json written by fleetsim"))
    except ValueError:
        return  # unreadable: the run did not finish writing it
    if not isinstance(summary, dict):
        return
    reason = str(summary.get("stop_reason", ""))
    complete = summary.get("complete")
    if complete is None:  # written before `complete` existed
        complete = reason != "interrupted" and not reason.startswith(("plugin_error", "error", "write_error"))
    if complete:
        raise InputError(f"this run finished (stopped by {reason} at {float(summary.get('makespan_s', 0)):,.1f} s "
                         "simulated), so there is nothing to resume; nothing was changed", value=str(run_dir),
                         accepted="the folder of a run that was killed, interrupted or failed; to run it again, "
                                  "`fleetsim run SCENARIO --out FOLDER --force`")


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _no_code_from(run_dir: Path, base_dir: Path) -> None:
    """Resume imports a run's plug-ins from where its scenario was, never from the run folder: a
    shared folder could carry a module (and a run.json pointing at it) that would run on `resume`.
    Import paths inside the run folder are taken off sys.path for this process."""
    folder = run_dir.resolve()
    if _within(base_dir.resolve(), folder):
        raise InputError("run.json says the scenario's plug-ins live inside the run folder itself; fleetsim never "
                         "imports code from a run folder; nothing was changed", file=run_dir / RUN_OPTIONS_FILE,
                         value=str(base_dir), accepted="a run.json written by `fleetsim run` (the scenario's folder)")
    sys.path[:] = [p for p in sys.path if not _within(Path(p or ".").resolve(), folder)]
    add_plugin_paths(base_dir)


def resume(run_dir: str | Path, *, executor: Any = None, progress: ProgressFn | None = None,
           report: bool | None = None, before_start: Callable[[Simulation], None] | None = None) -> Run:
    """Continue a killed, interrupted or failed run from its last checkpoint (or from the start if it
    has none); a finished run is refused. The run folder is locked while resuming, and only files
    fleetsim wrote are replaced. The traces written are byte-identical to those of an uninterrupted
    run (see checkpoint.py). ``before_start`` as in :func:`run`.
    """
    run_dir = Path(run_dir)
    folder = claim_for_resume(run_dir)
    try:
        options = read_run_options(run_dir)
        _refuse_finished(run_dir)
        scenario = load_yaml_model(run_dir / "scenario.yaml", Scenario)
        checkpoint = load_checkpoint(run_dir)
        _no_code_from(run_dir, Path(options["base_dir"]))
        try:
            simulation = Simulation(scenario, run_dir, scenario_file=str(run_dir / "scenario.yaml"),
                                    base_dir=Path(options["base_dir"]), timing_only=bool(options.get("timing_only")),
                                    executor=executor, progress=progress,
                                    checkpoint_every_s=options.get("checkpoint_every_s"), resume_from=checkpoint)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - as in run()
            raise preparing_failure(exc, scenario) from None
        remove_run_files(run_dir, keep=frozenset({"scenario.yaml", RUN_OPTIONS_FILE, CHECKPOINT_FILE}))
        if before_start is not None:
            before_start(simulation)
    except BaseException:
        folder.finish(keep=False)
        raise
    want_report = report if report is not None else scenario.output.report
    return _execute(simulation, folder, want_report)
