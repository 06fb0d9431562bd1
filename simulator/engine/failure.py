"""What stopped a run that did not reach its stop condition, in one paragraph a person can act on.

Why: an exception escaping the event loop used to end the run with a traceback and without a
summary. The engine now catches it, finishes the traces and the summary as Ctrl-C does, and asks
:func:`describe_failure` what happened:

- ``plugin``: the innermost frame of the exception is a user's code (a policy hook, a user model's
  ``forward``) — or a user's call into fleetsim was refused (:class:`PolicyCallError`). The message
  names the plug-in, the hook, the exception and the ``file:line`` where it was raised.
- ``write``: a trace, checkpoint or summary file could not be written (a full disk, say).
- ``input``: an InputError surfaced only while running (a file that changed under the run).
- ``internal``: anything else — a fleetsim bug; the message points at ``error.txt``.

"User code" is any frame outside the simulator package and outside the Python installation
(standard library, site-packages): plug-ins live next to the scenario or on PYTHONPATH.
"""

from __future__ import annotations

import errno
import re
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from simulator.errors import InputError, RunError
from simulator.server.policy import PolicyCallError
from simulator.trace.files import TraceWriteError

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM}
_REMOTE_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


@dataclass
class Frame:
    file: str
    line: int
    function: str


@dataclass
class RunFailure:
    kind: str            # plugin | write | input | internal
    message: str         # one paragraph: what failed, where
    stop_reason: str     # the summary's stop_reason
    error: BaseException
    traceback_text: str

    @property
    def input_error(self) -> InputError | None:
        return next((e for e in _chain(self.error) if isinstance(e, InputError)), None)


@dataclass
class RunOutcome:
    run_dir: Path
    summary: dict[str, Any]


class RunInterrupted(Exception):
    """Ctrl-C during a run: the traces and summary up to that moment were written."""

    def __init__(self, outcome: RunOutcome) -> None:
        super().__init__("run interrupted")
        self.outcome = outcome


class RunFailed(Exception):
    """A plug-in, a write or a bug stopped the run: traces and summary up to then were written (if
    the disk allowed); `failure` says what happened (simulator.engine.failure)."""

    def __init__(self, outcome: RunOutcome, failure: RunFailure) -> None:
        super().__init__(failure.message)
        self.outcome = outcome
        self.failure = failure


def _system_roots() -> tuple[str, ...]:
    import simulator

    roots = {str(Path(simulator.__file__).resolve().parent)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(str(Path(path).resolve()))
    roots.add(str(Path(sys.base_prefix).resolve()))
    return tuple(sorted(roots))


def _is_user(file: str, roots: tuple[str, ...]) -> bool:
    if file.startswith("<"):
        return False
    try:
        resolved = str(Path(file).resolve())
    except OSError:
        return False
    return not any(resolved == root or resolved.startswith(root + "/") for root in roots)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, innermost (the original) first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen[::-1]


def _frames(exc: BaseException) -> list[Frame]:
    frames = [Frame(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    text = str(exc)
    if "Traceback" in text or type(exc).__name__ in ("_RemoteTraceback", "RayTaskError"):
        # a worker process's traceback comes back as text (process pool, Ray)
        frames += [Frame(m.group(1), int(m.group(2)), m.group(3)) for m in _REMOTE_FRAME.finditer(text)]
    return frames


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plugin_label(file: str, plugins: dict[str, str]) -> str:
    try:
        resolved = str(Path(file).resolve())
    except OSError:
        resolved = file
    return plugins.get(resolved) or f"plug-in code in {Path(file).name}"


def describe_failure(exc: BaseException, plugins: dict[str, str] | None = None) -> RunFailure:
    """Classify an exception that ended the event loop (see the module docstring)."""
    plugins = plugins or {}
    chain = _chain(exc)
    text = "".join(traceback.format_exception(exc))
    original = chain[0]
    write = next((e for e in chain if isinstance(e, TraceWriteError)), None)
    if write is None:
        write = next((e for e in chain if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS
                      and not _user_frames(_frames(e))[-1:]), None)
    if write is not None:
        where = f" while writing {write.filename}" if getattr(write, "filename", None) else ""
        detail = _one_line(write.strerror or write)
        return RunFailure("write", f"the run folder could not be written ({detail}{where})",
                          f"write_error: {detail}{where}", exc, text)
    roots = _system_roots()
    for member in chain:
        users = [f for f in _frames(member) if _is_user(f.file, roots)]
        if users:
            return _plugin_failure(member, users, plugins, exc, text)
    late = next((e for e in chain if isinstance(e, InputError)), None)
    if late is not None:
        return RunFailure("input", late.message, f"bad_input: {_one_line(late.message)}", exc, text)
    frames = _frames(original)
    at = f" at {Path(frames[-1].file).name}:{frames[-1].line}" if frames else ""
    detail = f"{type(original).__name__}: {_one_line(original)}"
    return RunFailure("internal", f"fleetsim stopped on an internal error ({detail}{at}); this is a bug in fleetsim, "
                      "please report it with the run folder's error.txt", f"error: {detail}{at}", exc, text)


def _user_frames(frames: Iterable[Frame]) -> list[Frame]:
    roots = _system_roots()
    return [f for f in frames if _is_user(f.file, roots)]


def _plugin_failure(member: BaseException, users: list[Frame], plugins: dict[str, str], exc: BaseException,
                    text: str) -> RunFailure:
    inner = users[-1]
    label = _plugin_label(inner.file, plugins)
    hook = next(f.function for f in users if f.file == inner.file)  # the outermost frame in that file
    if isinstance(member, PolicyCallError):
        what = f"made a call the server refused: {_one_line(member)}"
    else:
        what = f"raised {type(member).__name__}: {_one_line(member) or '(no message)'}"
    where = f"in {hook} ({Path(inner.file).name}:{inner.line})"
    message = f"{label} {what}, {where}"
    return RunFailure("plugin", message, f"plugin_error: {label} {where}: {_one_line(member, 200)}", exc, text)


def plugin_files(refs: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """{resolved module file: "policy plug-in 'mod:Class'"} for the ``module:Name`` plug-ins named,
    among those already imported (the engine asks after building them)."""
    out: dict[str, str] = {}
    for kind, name in refs:
        if not isinstance(name, str) or ":" not in name:
            continue
        module = sys.modules.get(name.partition(":")[0])
        file = getattr(module, "__file__", None)
        if file:
            out[str(Path(file).resolve())] = f"{kind} plug-in '{name}'"
    return out


def scenario_plugin_files(scenario: Any) -> dict[str, str]:
    """:func:`plugin_files` for the plug-ins a Scenario names (policy, model, training model)."""
    wl = scenario.workload
    return plugin_files([("policy", scenario.algorithm.aggregation.get("policy")), ("model", wl.model.name),
                         ("training model", wl.train_model.name if wl.train_model else None)])


def preparing_failure(exc: Exception, scenario: Any) -> RunError:
    """A plug-in (or a bug) failing while the run is being prepared: nothing was written yet."""
    failure = describe_failure(exc, scenario_plugin_files(scenario))
    return RunError(f"{failure.message}, while preparing the run; nothing was run or written")
