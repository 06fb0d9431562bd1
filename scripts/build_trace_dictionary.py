#!/usr/bin/env python3
"""Regenerate the trace data dictionary, docs/trace_columns.md, from simulator/trace/columns.py.

Only the blocks between ``<!-- generated: <name> -->`` and ``<!-- /generated -->`` are rewritten (one
per table of a run folder, and the units legend); the prose around them is kept.

    python scripts/build_trace_dictionary.py           # rewrite the page's generated blocks
    python scripts/build_trace_dictionary.py --check   # exit 1, naming the blocks that differ
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "trace_columns.md"


def main(argv: list[str] | None = None) -> int:
    from simulator.trace.dictionary import COMMAND, render_blocks, update_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is out of date; write nothing")
    parser.add_argument("--page", type=Path, default=PAGE, help="the page (default: docs/trace_columns.md)")
    args = parser.parse_args(argv)
    text = args.page.read_text(encoding="utf-8")
    new, changed = update_page(text, render_blocks())
    if args.check:
        if changed:
            print(f"{args.page}: out of date for {', '.join(changed)} (the declaration is simulator/trace/"
                  f"columns.py); run `{COMMAND}`", file=sys.stderr)
            return 1
        print(f"{args.page}: up to date")
        return 0
    if new != text:
        args.page.write_text(new, encoding="utf-8")
        print(f"wrote {args.page}: {', '.join(changed)}")
    else:
        print(f"{args.page}: up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
