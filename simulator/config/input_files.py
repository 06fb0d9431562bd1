"""Input files are checked before they are opened: regular files only, within a size limit.

Why: every file fleetsim parses may come from someone else (a shared scenario, a sweep, a profile,
an availability trace). ``/dev/zero`` or a FIFO must not hang or exhaust memory, and a 50 MB
scenario must not parse for minutes before saying anything. The limit is 10 MB unless
``$FLEETSIM_MAX_INPUT_BYTES`` says otherwise; the check costs one ``stat``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from simulator.errors import InputError

MAX_INPUT_BYTES_ENV = "FLEETSIM_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT_BYTES = 10_000_000  # 10 MB: a 10,000-device scenario is ~100 kB; PyYAML parses ~0.25 MB/s


def max_input_bytes() -> int:
    """The size limit for every input file fleetsim parses (``$FLEETSIM_MAX_INPUT_BYTES``, default 10 MB)."""
    text = os.environ.get(MAX_INPUT_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise InputError("is not a positive whole number of bytes", field=f"${MAX_INPUT_BYTES_ENV}", value=text,
                         accepted=f"e.g. {DEFAULT_MAX_INPUT_BYTES} (the default, 10 MB)")
    return value


_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a pipe (FIFO)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def check_input_file(path: str | Path, accepted: str) -> int:
    """Refuse, before opening it, anything but an existing regular file within the size limit.

    Why before opening: opening a FIFO blocks until a writer appears and ``/dev/zero`` never ends,
    so a check after ``open`` would hang or exhaust memory instead of answering. Returns the size."""
    p = Path(path)
    try:
        info = p.stat()
    except FileNotFoundError:
        raise InputError("file not found", file=p, accepted=accepted) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", file=p, accepted=accepted) from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((word for test, word in _KINDS if test(info.st_mode)), "not a regular file")
        problem = "is a folder, not a file" if kind == "a folder" else f"is {kind}, not a regular file"
        raise InputError(problem, file=p, accepted=accepted)
    limit = max_input_bytes()
    if info.st_size > limit:
        raise InputError(f"is too large to read ({info.st_size:,} bytes; the limit is {limit:,} bytes)", file=p,
                         accepted=f"{accepted} of at most {limit:,} bytes (raise the limit with "
                                  f"${MAX_INPUT_BYTES_ENV}=BYTES)")
    return int(info.st_size)


def read_input_bytes(path: str | Path, accepted: str) -> bytes:
    """The bytes of an input file, checked by :func:`check_input_file` and never more than the limit
    (a file that grows while being read is cut off and refused)."""
    p = Path(path)
    check_input_file(p, accepted)
    limit = max_input_bytes()
    try:
        with p.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", file=p, accepted=accepted) from None
    if len(data) > limit:
        raise InputError(f"is too large to read (more than the limit of {limit:,} bytes)", file=p,
                         accepted=f"{accepted} of at most {limit:,} bytes (${MAX_INPUT_BYTES_ENV})")
    return data


def read_input_text(path: str | Path, accepted: str) -> str:
    """UTF-8 text of an input file (a leading byte-order mark, as spreadsheets write, is dropped)."""
    data = read_input_bytes(path, accepted)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=Path(path), accepted=f"{accepted}, saved as UTF-8") from None
