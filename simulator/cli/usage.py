"""Flag mistakes typer finds (a bad value, an unknown option, a missing argument) said as fleetsim says
bad input: one paragraph, exit status 2, never typer's usage box.

Why here and not in `friendly`: typer parses and converts the flags before a command's function runs,
so the command's error net never sees these mistakes. The app's group (``FleetsimGroup``) catches them
where click raises them — parsing the group's own flags (``make_context``) and resolving and parsing a
command (``invoke``) — and turns them into an InputError printed by common.bad_input, the one function
that prints bad input. ``--help``, ``--version`` and a bare ``fleetsim`` (the help) are no errors and
pass through untouched.
"""

from __future__ import annotations

from typing import Any

import typer
try:  # typer >= 0.29 vendors click as typer._click and raises its classes; a typer on plain click raises click's
    from typer._click.exceptions import (
        BadOptionUsage, BadParameter, MissingParameter, NoArgsIsHelpError, NoSuchOption, UsageError,
    )
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import (  # type: ignore[no-redef]
        BadOptionUsage, BadParameter, MissingParameter, NoArgsIsHelpError, NoSuchOption, UsageError,
    )
from typer.core import TyperGroup

from simulator.cli.common import bad_input
from simulator.errors import InputError

# pydantic's error types for the flag types fleetsim uses → (what the value is not, what is accepted)
_KINDS = {
    "int_parsing": ("not an integer", "an integer, e.g. {opt} 7"),
    "int_from_float": ("not an integer", "an integer, e.g. {opt} 7"),
    "float_parsing": ("not a number", "a number, e.g. {opt} 2.5"),
    "finite_number": ("not a finite number", "a finite number, e.g. {opt} 2.5"),
    "bool_parsing": ("not a yes/no value", "true or false"),
}


def command_name(ctx: Any) -> str:
    """`fleetsim run`, whatever the program was called (`python -m simulator.cli` included)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["fleetsim", *reversed(names)])


def _pydantic_error(err: BadParameter) -> dict[str, Any]:
    """pydantic's record behind typer's conversion error (its type and the input the user typed), or {}."""
    errors = getattr(err.__cause__, "errors", None)
    if not callable(errors):
        return {}
    try:
        first = errors()[0]
    except (IndexError, TypeError):
        return {}
    return first if isinstance(first, dict) else {}


def _flag(param: Any) -> str:
    """--seed for an option, SCENARIO for an argument."""
    if param is None:
        return "?"
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.name).upper()
    opts = [opt for opt in param.opts if opt.startswith("--")] or list(param.opts)
    return opts[0]


def as_input_error(err: UsageError, cmd: str | None = None) -> InputError:
    """The InputError that says `err` in fleetsim's words: the option, the value given, what is accepted,
    and where to read more (`fleetsim run --help`). `cmd` names the command when click's error carries
    no context (an option without its value)."""
    cmd = command_name(err.ctx) if err.ctx is not None or cmd is None else cmd
    hint = f"see `{cmd} --help`"
    if isinstance(err, MissingParameter):
        param = err.param
        flag = _flag(param)
        what = getattr(param, "help", None) or f"the {flag} {getattr(param, 'param_type_name', 'value')}"
        noun = "argument" if getattr(param, "param_type_name", "") == "argument" else "option"
        return InputError(f"`{cmd}` needs its {flag} {noun}; nothing was run", accepted=f"{what} ({hint})")
    if isinstance(err, BadParameter):
        flag = _flag(err.param)
        record = _pydantic_error(err)
        value = record.get("input", ...)
        problem, accepted = _KINDS.get(record.get("type", ""),
                                       (err.message.rstrip("."), "the values `{cmd} --help` gives"))
        accepted = accepted.format(opt=flag, cmd=cmd)
        return InputError(problem, field=flag, value=value, accepted=f"{accepted} ({hint})")
    if isinstance(err, NoSuchOption):
        nearest = sorted(err.possibilities or ())
        accepted = f"the options `{cmd} --help` lists" + (f" (the nearest: {', '.join(nearest)})" if nearest else "")
        return InputError(f"`{cmd}` has no such option", value=err.option_name, accepted=accepted)
    if isinstance(err, BadOptionUsage) and "requires an argument" in err.message:
        return InputError("no value was given", field=err.option_name, accepted=f"a value after it ({hint})")
    # an extra argument, an unknown command: click's sentence, and the hint
    return InputError(f"{err.format_message().rstrip('.')}; {hint}")


class FleetsimGroup(TyperGroup):
    """The app's command group: typer's, except that flag mistakes end as fleetsim's bad-input paragraph."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise  # a bare `fleetsim`: the help, as before
        except UsageError as err:
            bad_input(as_input_error(err))
            raise typer.Exit(2) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as err:
            sub = ctx.invoked_subcommand
            bad_input(as_input_error(err, f"{command_name(ctx)} {sub}" if sub else None))
            raise typer.Exit(2) from None
