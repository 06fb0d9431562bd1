"""``ray.init`` away from the user's working directory (:func:`start_ray`).

Why: ``ray.init`` records the driver's working directory and Ray's workers put it first on their
``sys.path``, ahead of PYTHONPATH (PYTHONSAFEPATH does not stop it: Ray inserts it itself, in
``worker.py``'s connect and ``_raylet.pyx``'s job config), so a folder named ``simulator`` where the
user runs fleetsim (their own package, another checkout) replaced fleetsim in every actor and every
sweep task, which died (tests/learning/test_ray_working_directory.py,
tests/sweep/test_sweep_ray_working_directory.py). Ray leaves the cwd out only for ``ray://`` clients
or with a ``working_dir``, which uploads a folder; so ``ray.init`` runs in an empty folder of
fleetsim's instead, and the caller's working directory comes back after, also when it fails.

What that means: a cluster ``ray.init`` starts here runs its workers in that folder (every path
fleetsim sends them is absolute); a remote one (``address``) keeps its own and only records a folder
it may not have, which Python skips. The script's folder, which Ray also puts on the workers' path,
is resolved first (``sys.argv[0]`` made absolute meanwhile), so it is the one it would have been.
Other threads of the process see the empty folder as their working directory while Ray starts (a
few seconds); fleetsim starts Ray before its own threads write anything.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

from simulator.errors import InputError

_EMPTY_DIR: str | None = None  # the empty folder ray.init runs in (one per process, made when first needed)
# Folders named in the environment that local workers inherit and read (the plan cache: cost/cache.py):
# a relative one is made absolute first, so it names the folder it named before, not one in _EMPTY_DIR.
_PATH_VARIABLES = ("FLEETSIM_CACHE_DIR", "XDG_CACHE_HOME")


_REACH_TIMEOUT_S = 5.0  # how long a cluster's head may take to accept a connection


def start_ray(ray: Any, **init_kwargs: Any) -> Any:
    """``ray.init(**init_kwargs)`` of the `ray` module given, run away from the working directory.
    A ``host:port`` address nothing answers at is refused first (:func:`check_reachable`)."""
    address = init_kwargs.get("address")
    if address:
        check_reachable(address)
    with away_from_the_working_directory():
        return ray.init(**init_kwargs)


def check_reachable(address: str) -> None:
    """Raise InputError if `address` is ``host:port`` and no process accepts a connection there.

    Why: Ray retries an unreachable head for minutes, printing its own warnings, before it fails
    (seen: over two minutes for ``127.0.0.1:1``); a mistyped ``--ray-address`` deserves one clear
    paragraph at once. ``auto``, ``local`` and ``ray://`` client addresses are left to Ray."""
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or "://" in str(address) or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_REACH_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        raise InputError(f"no Ray cluster answers at {address} ({exc.strerror or exc})", field="--ray-address",
                         value=address, accepted="the host:port of a running Ray head (`ray start --head` prints "
                         "it), or no address for a local cluster") from None


@contextmanager
def away_from_the_working_directory() -> Iterator[str]:
    """Run what this wraps in an empty folder of fleetsim's (yielded); the caller's working directory
    and ``sys.argv[0]`` are restored after, also when it fails. A relative plan-cache folder in the
    environment (``_PATH_VARIABLES``) is made absolute for good: the same folder, for every process."""
    global _EMPTY_DIR
    if _EMPTY_DIR is None or not os.path.isdir(_EMPTY_DIR):
        _EMPTY_DIR = tempfile.mkdtemp(prefix="fleetsim-ray-")
        atexit.register(_remove_if_empty, _EMPTY_DIR)
    home, script = os.getcwd(), sys.argv[0] if sys.argv else ""
    for name in _PATH_VARIABLES:
        value = os.environ.get(name)
        if value and value != "off" and not os.path.isabs(value):
            os.environ[name] = os.path.join(home, value)
    if script:
        sys.argv[0] = os.path.realpath(script)
    os.chdir(_EMPTY_DIR)
    try:
        yield _EMPTY_DIR
    finally:
        os.chdir(home)
        if script:
            sys.argv[0] = script


def _remove_if_empty(path: str) -> None:
    try:
        os.rmdir(path)  # only if empty: what a worker may have written there is not fleetsim's to delete
    except OSError:
        pass
