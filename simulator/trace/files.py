"""What the trace's files are called on disk and the error of writing one: no pyarrow.

Why apart from :mod:`simulator.trace.tables` (the writer, which is pyarrow through and through): the
modules that only name these — the recorder's importers on every start-up path (fleet.device,
server.server, engine), engine.failure classifying a failed write, report.loading finding a killed
run's parts — then import no pyarrow, so `fleetsim validate` and `explain` start without it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PARTS_DIR = "_parts"  # <run>/_parts/<table>/part-*.parquet: a table's rows until its file is joined


class TraceWriteError(OSError):
    """A trace file could not be written (a full disk, a read-only or vanished folder), naming it."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        code = getattr(cause, "errno", None)
        if code is None:  # pyarrow puts the errno in its message only: "... [errno 28] No space left on device"
            found = re.search(r"errno (\d+)", str(cause), re.IGNORECASE)
            code = int(found.group(1)) if found else None
        reason = os.strerror(code) if code else " ".join(str(cause).split())[:200]
        super().__init__(code, reason, str(path))
