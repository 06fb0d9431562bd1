"""Child processes the tests start and interrupt: Ctrl-C at its default in them, none left running.

Why: a shell without job control starts a background job (``python -m pytest &``, a CI step run that
way) with SIGINT ignored, and every child inherits that; Python then installs no KeyboardInterrupt
handler, so the interrupt tests' SIGINT did nothing. Each interrupted ``fleetsim run`` went on for
ever, its test failed on a timeout, and the runs kept the machine's two cores busy for the rest of
the suite (seen on 2026-12-02: seven such runs, load 9). The children reset SIGINT to its default
before Python starts, and whatever a test leaves running is killed when it ends
(tests/conftest.py).
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any

_STARTED: list[subprocess.Popen[str]] = []


def _sigint_at_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(command: list[str], **popen_kwargs: Any) -> subprocess.Popen[str]:
    """``subprocess.Popen(command, text=True, ...)`` with SIGINT at its default in the child; killed
    after the test if it is still running then."""
    proc = subprocess.Popen(command, text=True, preexec_fn=_sigint_at_default, **popen_kwargs)
    _STARTED.append(proc)
    return proc


def stop_leftovers() -> None:
    """Kill (and reap) every child a test started that still runs."""
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
