"""Which of Co-S²P's parts help: one row per part, from the ablation and knowledge-transfer sweeps.

Issue 15 asks the page to say plainly which parts help and which do not. Each part is judged by the
one pair of runs that differs in that part alone (the default against the variant that lacks it, or
two variants with the same submodel rule), seed by seed: the part **helps** where the 95 % interval
of (with − without) in accuracy at the budget lies above 0, **hurts** where it lies below, and
otherwise no difference is shown. The rows name their runs, so a reader can find both in the tables
further down the page.
"""

from __future__ import annotations

from typing import Any

from paper_metrics import markdown_table
from paper_stats import paired_differences, verdict

# (the part, the sweep it is tested in, the run with it, the run without it). The ablation sweep's
# `abl-default` and the distillation sweep's `kd-deepest` are both the comparison's `co-s2p` runs.
PARTS: tuple[tuple[str, str, str, str], ...] = (
    ("semi-asynchronous merges rather than synchronous rounds (same 120 s deadline, same submodels)",
     "ablations", "abl-default", "abl-agg-sync"),
    ("submodels fitted to the deadline as well as to memory", "ablations", "abl-default", "abl-memfit-semi-async"),
    ("merging every K = 8 arrivals rather than each on arrival (FedAsync; memory-fitted submodels in both)",
     "ablations", "abl-memfit-semi-async", "abl-memfit-async"),
    ("relative staleness weights rather than FedBuff's absolute damping", "ablations", "abl-default",
     "abl-staleness-absolute"),
    ("depth pruning beside width pruning", "ablations", "abl-default", "abl-prune-width-only"),
    ("width pruning beside depth pruning", "ablations", "abl-default", "abl-prune-depth-only"),
    ("rolling the trained blocks rather than always the first ones (depth pruning only)", "ablations",
     "abl-prune-depth-only", "abl-prune-depth-fixed"),
    ("importance-chosen units rather than HeteroFL's first units (width pruning only)", "ablations",
     "abl-prune-width-only", "abl-units-static"),
    ("each client's own unit ranking rather than one fleet-wide ranking (width pruning only)", "ablations",
     "abl-prune-width-only", "abl-units-fleet"),
    ("K = 8 rather than 4", "ablations", "abl-default", "abl-k4"),
    ("K = 8 rather than 12", "ablations", "abl-default", "abl-k12"),
    ("a 120 s deadline rather than 60 s", "ablations", "abl-default", "abl-deadline60"),
    ("a 120 s deadline rather than 240 s", "ablations", "abl-default", "abl-deadline240"),
    ("deepest-exit self-distillation rather than none", "distillation", "kd-deepest", "kd-off"),
    ("the global model's deepest exit as teacher rather than the client's own (not in the preset)",
     "distillation", "kd-global", "kd-deepest"),
)

WORDS = {"better": "**helps**", "worse": "**hurts**"}


def _pp(mean: float, low: float, high: float) -> str:
    return f"{100 * mean:+.1f} pp [{100 * low:+.1f}, {100 * high:+.1f}]"


def paired_difference(rows: list[dict[str, Any]], metric: str, with_part: str, without: str) -> dict[str, Any] | None:
    """The seed-paired difference (with − without: n, mean, low, high) of one pair of labels, or None."""
    d = paired_differences(rows, metric, with_part)
    hit = d[d["other"] == without]
    return None if hit.empty else hit.iloc[0].to_dict()


def parts_section(results: dict[str, Any]) -> list[str]:
    """The section's lines (empty when neither sweep is among `results`): a sentence naming the parts
    that help and hurt, then a table of every part with both seed-paired differences."""
    entries = {kind: next((e for stem, e in results.items() if stem.endswith(kind) and e.get("rows")), None)
               for kind in ("ablations", "distillation")}
    table, helps, hurts, seeds = [], [], [], set()
    for part, kind, with_part, without in PARTS:
        entry = entries[kind]
        if entry is None:
            continue
        at_budget = paired_difference(entry["rows"], "acc_budget", with_part, without)
        if at_budget is None:
            continue
        tail = paired_difference(entry["rows"], "acc_tail", with_part, without)
        word = verdict(at_budget["low"], at_budget["high"])
        shown = WORDS.get(word, word)
        (helps if word == "better" else hurts if word == "worse" else []).append(part)
        seeds.add(int(at_budget["n"]))
        table.append([part, f"`{with_part}` − `{without}`", _pp(at_budget["mean"], at_budget["low"], at_budget["high"]),
                      _pp(tail["mean"], tail["low"], tail["high"]) if tail else "–", shown])
    if not table:
        return []
    pairs = "–".join(str(n) for n in sorted({min(seeds), max(seeds)}))
    plain = (f"On this testbed, over {pairs} seeds: **helps**: {'; '.join(helps) if helps else 'none of them'}. "
             f"**Hurts**: {'; '.join(hurts) if hurts else 'none of them'}. For every other part no difference is "
             "shown: its interval holds 0, so the runs cannot tell it from its absence (which is not evidence that it "
             "does nothing).")
    return ["### Co-S²P's parts, one at a time", "",
            "Each part is judged by the pair of runs that differ in it alone (with − without, seed by seed, accuracy "
            "at the budget; 95 % interval; the last 10 % of the budget beside it). " + plain, "",
            markdown_table(["part of Co-S²P", "runs compared", "acc. at budget", "mean acc. last 10 %", "verdict"],
                           table, "llrrl"), ""]
