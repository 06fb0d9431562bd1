"""How long a worker's 620 KB result waits in ``send_bytes``: socket pair, default pipe, enlarged pipe.

Why: the process pool sends every result of issue 16's CNN (620 KB) back over a connection; while
the engine's receiving thread cannot run (the engine process's GIL held by another thread), a
connection whose kernel buffer is smaller than the message makes the worker wait instead of train.
A child process sends ``--messages`` results with ``--work`` iterations of a pure-Python loop between
them (a stand-in for training); this process receives them, with ``--busy`` a thread of it spinning
in Python so the receiving thread gets the GIL only at switch intervals. The three kinds alternate.

    python benchmarks/pipe_send.py              # free receiver
    python benchmarks/pipe_send.py --busy       # a receiver whose GIL is contended
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import threading
import time
from typing import Any

from simulator.learning.executors.pool import _roomy_pipe

SIZE_BYTES = 620_000


def _sender(conn: Any, report: Any, messages: int, work: int) -> None:
    message, waits = os.urandom(SIZE_BYTES), []
    for _ in range(messages):
        start = time.perf_counter()
        conn.send_bytes(message)
        waits.append(time.perf_counter() - start)
        x = 0
        for _ in range(work):
            x += 1
    report.send(waits)


def measure(kind: str, messages: int, work: int) -> tuple[float, float]:
    ctx = multiprocessing.get_context("fork")
    if kind == "socket pair":
        reading, writing = ctx.Pipe(duplex=True)
    elif kind == "pipe":
        reading, writing = ctx.Pipe(duplex=False)
    else:
        reading, writing = _roomy_pipe(ctx)
    report_in, report_out = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_sender, args=(writing, report_out, messages, work))
    child.start()
    for _ in range(messages):
        reading.recv_bytes()
    waits = sorted(report_in.recv())
    child.join()
    return statistics.median(waits) * 1e3, waits[int(0.9 * len(waits))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", action="store_true", help="a thread of the receiver spins in Python")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--work", type=int, default=600_000, help="loop iterations between sends (~25 ms)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.busy:
        def spin() -> None:
            x = 0
            while True:
                x += 1
        threading.Thread(target=spin, daemon=True).start()
    for _ in range(args.repeat):
        for kind in ("socket pair", "pipe", "enlarged pipe"):
            median, p90 = measure(kind, args.messages, args.work)
            print(f"{kind:13s} send wait median {median:7.3f} ms, 90th percentile {p90:7.3f} ms", flush=True)


if __name__ == "__main__":
    main()
