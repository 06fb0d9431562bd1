"""One process at a time per run or sweep folder (the ``filelock`` package: an OS lock, freed on death).

Why: two `fleetsim resume` of one folder, or two `run --force` into it, used to interleave their
deletions and writes and both report success. The lock file ``.fleetsim-lock`` lives inside the
folder; the holder writes its process id to ``.fleetsim-owner`` beside it so the second process can
say who holds it. A killed holder's OS lock is released by the kernel, so a stale owner file never
blocks anyone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from simulator.errors import InputError

LOCK_FILE = ".fleetsim-lock"
OWNER_FILE = ".fleetsim-owner"

_HELD: set[str] = set()  # folders this process holds: a second claim from the same process is refused too


def _holder(folder: Path) -> str:
    """'process 1234 (fleetsim run s.yaml)' from the owner file, waiting briefly for a holder that has
    just taken the lock and not yet written it."""
    for _ in range(10):
        try:
            owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
            command = str(owner.get("command", ""))[:120]
            return f"process {int(owner['pid'])}" + (f" ({command})" if command else "")
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "another process"


class FolderLock:
    """Held while a run, resume or sweep uses `folder`; :meth:`acquire` raises InputError if taken."""

    def __init__(self, folder: Path, what: str = "run folder") -> None:
        self.folder = Path(folder)
        self.what = what
        self._lock: FileLock | None = None
        self._key = ""

    def acquire(self) -> "FolderLock":
        key = str(self.folder.resolve())
        if key in _HELD:
            raise self._busy("this process")
        lock = FileLock(str(self.folder / LOCK_FILE), timeout=0)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise self._busy(_holder(self.folder)) from None
        except OSError as exc:
            raise InputError(f"the {self.what} cannot be locked ({exc.strerror or exc})", value=str(self.folder),
                             accepted="a folder you can write to") from None
        self._lock, self._key = lock, key
        _HELD.add(key)
        owner = {"pid": os.getpid(), "command": " ".join(["fleetsim", *sys.argv[1:]])[:300],
                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            (self.folder / OWNER_FILE).write_text(json.dumps(owner) + "\n", encoding="utf-8")
        except OSError:
            pass  # a full disk: the lock still holds; only the holder's name is missing
        return self

    def _busy(self, holder: str) -> InputError:
        return InputError(f"the {self.what} is in use by {holder}; nothing was changed", value=str(self.folder),
                          accepted="wait until it finishes (or stop it), or choose another folder")

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            (self.folder / OWNER_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        self._lock.release()
        self._lock = None
        _HELD.discard(self._key)

    @property
    def held(self) -> bool:
        return self._lock is not None
