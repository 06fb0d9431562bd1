"""What every `fleetsim` command shares: the two consoles and the error net.

Why one module: each command module imports these directly instead of receiving them from the app,
so a command can be read (and tested) on its own, and nothing here imports torch, pandas or SimPy —
`fleetsim --help` pays for typer and rich only.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console
from rich.text import Text

from simulator.errors import InputError, RunError

console = Console(stderr=False)
err_console = Console(stderr=True)


def bad_input(err: InputError) -> None:
    """Say bad input the one way fleetsim says it: one paragraph on stderr (the caller exits with 2)."""
    # one line the terminal wraps itself: paths and field names stay whole for copy and grep,
    # and Text (not markup) keeps brackets like fleet[1] or a user's value intact
    err_console.print(Text.assemble(("fleetsim: bad input: ", "bold red"), err.message), soft_wrap=True)


def warn(text: str) -> None:
    """A warning the one way fleetsim says it: one paragraph on stderr; the command goes on."""
    err_console.print(Text.assemble(("fleetsim: warning: ", "bold yellow"), text), soft_wrap=True)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError into one paragraph on stderr and exit status 2, a run that failed once started
    (a plug-in raised, the disk filled) into one paragraph and exit status 1, Ctrl-C into exit status
    130 — never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            bad_input(err)
            raise typer.Exit(2) from None
        except RunError as err:
            err_console.print(Text.assemble(("fleetsim: run failed: ", "bold red"), err.message), soft_wrap=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt as stop:
            detail = str(stop) or "traces written so far are kept in the run folder"
            err_console.print(f"[yellow]Interrupted: {detail}.[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # the CLI's own exits and usage errors (typer >= 0.29 carries its own click: no click import)
        except Exception as exc:  # noqa: BLE001 - the last net: one paragraph, never a traceback
            if os.environ.get("FLEETSIM_TRACEBACK"):
                raise
            from simulator.engine.failure import describe_failure

            message = describe_failure(exc).message + " (FLEETSIM_TRACEBACK=1 shows the traceback)"
            err_console.print(Text.assemble(("fleetsim: failed: ", "bold red"), message), soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def writing(path: Path, write: Callable[[], Path]) -> Path:
    """Run `write`; an OSError (read-only folder, full disk, a file where a folder should be) is bad
    output input, said in one paragraph."""
    try:
        return write()
    except OSError as exc:
        raise InputError(f"cannot be written ({exc.strerror or exc})", file=path,
                         accepted="a path in a folder you can write to") from None


def check_format(fmt: str, accepted: tuple[str, ...] = ("table", "json", "csv")) -> str:
    """A `--format` value, or InputError naming the accepted ones."""
    if fmt not in accepted:
        raise InputError("unknown output format", field="--format", value=fmt, accepted=", ".join(accepted))
    return fmt
