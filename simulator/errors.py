"""The one exception type a user ever sees.

Bad input must never surface as a traceback: every check that rejects user input raises
:class:`InputError`, and the CLI prints its message as one paragraph and exits with status 2.
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Any

_ONE_PARAGRAPH = re.compile(r"\s*[\r\n]+\s*")  # wrapped exception texts must not break the paragraph


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 3, 6, 8, 8
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 80, 80, 40


def _show(value: Any) -> str:
    """A short repr; bounded work even for a huge or self-referencing value."""
    if isinstance(value, (str, Path)) and len(str(value)) <= 300:
        return repr(str(value))  # paths and names in full: a cut path is no help
    text = _REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class InputError(ValueError):
    """A user-facing error naming the file, the field path, the bad value and what is accepted.

    It is a ``ValueError`` so that a pydantic validator may raise it: pydantic then adds where in the
    document the failing part sits, and :mod:`simulator.config.loading` joins that location with the
    error's own (relative) ``field``. A validator can thus say what is accepted, however deep it sits.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        value: Any = ...,
        accepted: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.field = field
        self.value = value
        self.accepted = accepted
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.file:
            where.append(f"in {self.file}")
        if self.field:
            where.append(f"at '{self.field}'")
        text = " ".join(where)
        text = (text[0].upper() + text[1:] + ": ") if text else ""
        text += self.problem.rstrip(".")
        if self.value is not ...:
            text += f" (got {_show(self.value)})"
        text += "."
        if self.accepted:
            text += f" Accepted: {self.accepted.rstrip('.')}."
        return _ONE_PARAGRAPH.sub(" ", text)

    def with_file(self, file: str | Path) -> "InputError":
        """Return the same error, naming `file` if it did not name one yet."""
        if self.file is None:
            self.file = str(file)
            self.args = (self.message,)
        return self


class RunError(Exception):
    """A run that started and then stopped on a failure (a plug-in raised, the disk filled, a bug).

    Not bad input, so not an InputError: the CLI prints its message as one paragraph and exits with
    status 1. The message says what failed, where, and what the run folder kept.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        self.message = _ONE_PARAGRAPH.sub(" ", message).strip()
        super().__init__(self.message)
