"""The pool's pipes take a whole small result at once, so a worker never waits for the engine to read.

Why it matters: a result of issue 16's CNN is 620 KB. Through a default duplex socket pair (208 KB)
or pipe (64 KB), a worker's ``send_bytes`` blocked until the engine's receiving thread had drained
it, time the worker did not train; ``_roomy_pipe`` enlarges the kernel buffer to Linux's
unprivileged limit (``/proc/sys/fs/pipe-max-size``)."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from pathlib import Path

import pytest

from simulator.learning.executors.pool import _PIPE_BYTES, _roomy_pipe

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/sys/fs/pipe-max-size").exists(),
                                reason="pipe buffer sizes are a Linux facility")


@linux_only
def test_both_ends_have_the_enlarged_buffer() -> None:
    import fcntl

    reading, writing = _roomy_pipe(multiprocessing.get_context("spawn"))
    try:
        expected = min(int(Path("/proc/sys/fs/pipe-max-size").read_text()), _PIPE_BYTES)
        assert expected > 64 * 1024
        assert fcntl.fcntl(writing.fileno(), fcntl.F_GETPIPE_SZ) == expected
        assert fcntl.fcntl(reading.fileno(), fcntl.F_GETPIPE_SZ) == expected
    finally:
        reading.close()
        writing.close()


@linux_only
def test_a_620_kb_result_is_sent_with_nobody_reading() -> None:
    if int(Path("/proc/sys/fs/pipe-max-size").read_text()) < _PIPE_BYTES:
        pytest.skip("this host's pipe-max-size is below 1 MB")
    reading, writing = _roomy_pipe(multiprocessing.get_context("spawn"))
    message = bytes(range(256)) * (620_000 // 256)
    sent = threading.Event()

    def send() -> None:
        writing.send_bytes(message)
        sent.set()

    threading.Thread(target=send, daemon=True).start()
    try:
        assert sent.wait(timeout=10), "the send blocked until a reader drained the pipe"
        assert reading.recv_bytes() == message
    finally:
        reading.close()  # a blocked writer (a failing run) gets EPIPE and its daemon thread ends
        writing.close()
