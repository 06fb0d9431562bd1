"""Writes docs/results.md from the collected runs (see reproduce_paper.py). Every number and every
verdict on the page is computed here from the run folders; the fixed text only explains definitions
and caveats that hold whatever the numbers are."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from paper_metrics import claims, claims_table, markdown_table, memory_table, method_table, utilization_table
from paper_parts import paired_difference, parts_section
from paper_stats import kendall_tau, paired_differences, ranking, verdict
from paper_text import ABLATION_NOTES, BUDGET_NOTE, CAVEATS, PAPER, SETUP

OURS = "co-s2p"

def _row(agg: pd.DataFrame, label: str) -> pd.Series | None:
    hit = agg[agg["label"] == label]
    return hit.iloc[0] if len(hit) else None


def _tally(entry: dict[str, Any], metric: str, higher_is_better: bool) -> tuple[list[str], list[str], list[str], list[str]]:
    """Baselines Co-S²P beats, ties and loses to on `metric`, by the 95 % confidence interval of the
    seed-paired differences (a tie: the interval holds 0, or fewer than two pairs); and the ties whose
    mean difference nevertheless favours the baseline."""
    wins, ties, losses, adverse = [], [], [], []
    for r in paired_differences(entry["rows"], metric, OURS).itertuples():
        word = verdict(r.low, r.high, higher_is_better)
        (wins if word == "better" else losses if word == "worse" else ties).append(r.other)
        if word not in ("better", "worse") and not math.isnan(r.mean) and (r.mean < 0) == higher_is_better and r.mean != 0:
            adverse.append(r.other)
    return wins, ties, losses, adverse


def _verdict(wins: list[str], ties: list[str], losses: list[str], adverse: list[str] | None = None) -> str:
    total = len(wins) + len(ties) + len(losses)
    if total == 0:
        return "**cannot tell**"
    if not wins and not losses:
        return "**not reproduced** (no difference shown by the seed-paired 95 % intervals)"
    if not losses and adverse:
        return f"**agrees in part** (worse on average than {_names(adverse)}, within seed noise)"
    if not losses:
        return "**agrees**" if len(wins) > len(ties) else "**agrees in part** (half or more are ties)"
    if len(losses) > len(wins):
        return f"**disagrees** (worse than {_names(losses)}; better than {_names(wins)})"
    return f"**agrees in part** (better than {_names(wins)}; worse than {_names(losses)})"


def _span(values: pd.Series, scale: float = 100.0) -> str:
    """``a % … b %`` of a series of relative changes, one figure when they are all the same."""
    lo, hi = scale * values.min() + 0.0, scale * values.max() + 0.0
    if round(lo) == 0:
        lo = 0.0
    if round(hi) == 0:
        hi = 0.0
    return f"{lo:+.0f} %" if round(lo) == round(hi) else f"{lo:+.0f} % … {hi:+.0f} %"


def _names(labels: list[str]) -> str:
    return ", ".join(f"`{x}`" for x in labels) if labels else "none"


def accuracy_claim(task: str, entry: dict[str, Any]) -> str:
    agg, c = entry["agg"], claims(entry["agg"], "label")
    wins, ties, losses, adverse = _tally(entry, "acc_budget", True)
    best = c.loc[c["acc_pp"].idxmax()]
    worst = c.loc[c["acc_pp"].idxmin()]
    half_w, half_t, half_l, _ = _tally(entry, "acc_half", True)
    me = _row(agg, OURS)
    return (
        f"- **{task}** ({entry['budget_s']:.0f} s budget): Co-S²P's accuracy minus the baseline's ranges from "
        f"{worst.acc_pp:+.1f} pp (vs `{worst.baseline}`) to {best.acc_pp:+.1f} pp (vs `{best.baseline}`); paper: "
        f"up to +{PAPER['acc_pp']} pp. By the 95 % interval of the seed-paired difference it beats {_names(wins)}, ties {_names(ties)}, "
        f"loses to {_names(losses)} → {_verdict(wins, ties, losses, adverse)}"
        + ("" if math.isnan(me["acc_budget_std"]) else f"; Co-S²P's own seed-std: {100 * me['acc_budget_std']:.1f} pp")
        + ". Averaged over the last 10 % of the budget "
        f"the difference is {c['acc_tail_pp'].min():+.1f} … {c['acc_tail_pp'].max():+.1f} pp. At half the budget it beats "
        f"{len(half_w)}, ties {len(half_t)} and loses to {len(half_l)} of {len(c)} baselines "
        f"(range {c['acc_half_pp'].min():+.1f} … {c['acc_half_pp'].max():+.1f} pp)."
    )


def utilization_claim(task: str, entry: dict[str, Any]) -> str:
    c = claims(entry["agg"], "label")
    above = c[c["util_x"] > 1.0]
    below = c[c["util_x"] <= 1.0]
    return (
        f"- **{task}**: Co-S²P's utilization is {c['util_x'].min():.2f}× … {c['util_x'].max():.2f}× the baselines' "
        f"(paper: up to {PAPER['util_x']}×). Higher than {_names(list(above['baseline']))}; not higher than "
        f"{_names(list(below['baseline']))} → "
        + ("**agrees in direction; the size depends entirely on the baseline**" if len(above) > len(below)
           else "**disagrees**" if len(above) == 0 else "**agrees in part**") + "."
    )


def memory_claim(task: str, entry: dict[str, Any]) -> str:
    agg, c = entry["agg"], claims(entry["agg"], "label")
    lean = c[c["mem_rel"] < 0]
    ooming = c[c["baseline_ooms"] > 0]
    alloc = c.loc[c["baseline_ooms"] > 0, "mem_alloc_rel"].dropna()
    me = _row(agg, OURS)
    largest = max((me[k] for k in me.index if k.startswith("mem:") and k.endswith("_mean")), default=math.nan)
    alloc_text = ("" if alloc.empty else
                  f" Counting an OOM board at the 0 bytes it really allocated, the change against those baselines "
                  f"is {_span(alloc)}"
                  + (": against them, Co-S²P's saving is almost all the Nanos training a submodel where the baseline "
                     "crashes and uses nothing." if alloc.max() > c["mem_rel"].max() / 2 else "."))
    return (
        f"- **{task}**: mean peak training memory over the 16 boards (an OOM board counted at what it was "
        f"asked for) changes by {_span(c['mem_rel'])} against the "
        f"baselines (paper: about {100 * PAPER['mem_rel']:.0f} %); lower than {len(lean)} of {len(c)}. "
        f"Co-S²P's largest board still peaks at {largest:.2f} GB (strong boards train the whole model). "
        f"Baselines with OOM boards: {_names(list(ooming['baseline']))}.{alloc_text} → "
        + ("**agrees**" if len(lean) == len(c) else "**agrees in part**" if len(lean) else "**disagrees**")
        + " (counting what each board is asked for)."
    )


def time_claim(task: str, entry: dict[str, Any]) -> str:
    c = claims(entry["agg"], "label")
    me = _row(entry["agg"], OURS)
    known = c.dropna(subset=["time_rel"])
    never = c[c["baseline_reached"].str.startswith("0/")]
    partial = c[~c["baseline_reached"].str.startswith("0/") & c["time_rel"].isna()]
    wins, ties, losses, adverse = _tally(entry, "time_to_target_s", False)
    reached = f"{int(me['time_to_target_s_n'])}/{int(me['runs'])}"
    if known.empty:
        span = "no baseline reached the target in every seed"
    else:
        span = (f"{100 * known['time_rel'].min():+.0f} % … {100 * known['time_rel'].max():+.0f} % against the "
                f"baselines that reached it in every seed")
    return (
        f"- **{task}** (target {entry['target']:.0%}; Co-S²P reached it in {reached} seeds): time to target "
        f"changes by {span} (paper: about {100 * PAPER['time_rel']:.0f} % training time). Never reached by "
        f"{_names(list(never['baseline']))}; not in every seed by {_names(list(partial['baseline']))}. "
        f"By the 95 % interval of the seed-paired difference Co-S²P is faster than {_names(wins)}, ties {_names(ties)}, slower than "
        f"{_names(losses)} → {_verdict(wins + list(never['baseline']), ties, losses, adverse)}."
    )


# variants whose fair reference is another variant (same submodel rule), not the default
PAIRED = {"abl-units-static": "abl-prune-width-only", "abl-memfit-async": "abl-memfit-semi-async",
          "abl-units-fleet": "abl-prune-width-only"}


def _ci_text(mean: float, low: float, high: float, scale: float = 100.0, unit: str = "pp") -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(low):
        return f"{scale * mean:+.1f} {unit}"
    return f"{scale * mean:+.1f} {unit} [{scale * low:+.1f}, {scale * high:+.1f}]"


def _pair_text(entry: dict[str, Any], label: str) -> str:
    other = PAIRED.get(label)
    if other is None:
        return ""
    r = paired_difference(entry["rows"], "acc_budget", label, other)
    if r is None:
        return ""
    return f" Against `{other}` (same submodel rule): {_ci_text(r['mean'], r['low'], r['high'])} → {verdict(r['low'], r['high'])}."


def ablation_lines(entry: dict[str, Any]) -> list[str]:
    """Each variant against the default, seed by seed: what changing one part does to the accuracy."""
    agg = entry["agg"]
    base = _row(agg, "abl-default")
    if base is None:
        return []
    lines, helps, hurts = [], [], []
    acc = paired_differences(entry["rows"], "acc_budget", "abl-default").set_index("other")
    tail = paired_differences(entry["rows"], "acc_tail", "abl-default").set_index("other")
    for _, r in agg.iterrows():
        label = r["label"]
        if label == "abl-default" or label not in acc.index:
            continue
        a, t = acc.loc[label], tail.loc[label] if label in tail.index else None
        word = verdict(a["low"], a["high"])  # from the default's side: "better" = the default beats the variant
        (helps if word == "better" else hurts if word == "worse" else []).append(label)
        t_a, t_b = r["time_to_target_s_mean"], base["time_to_target_s_mean"]
        ttt = "–" if math.isnan(t_a) or math.isnan(t_b) else f"{100 * (t_a / t_b - 1):+.0f} %"
        lines.append(
            f"- `{label}` ({ABLATION_NOTES.get(label, '')}): the default minus this variant, accuracy at the budget "
            f"{_ci_text(a['mean'], a['low'], a['high'])}"
            + (f", last 10 % {_ci_text(t['mean'], t['low'], t['high'])}" if t is not None else "")
            + f" → {'the default is better' if word == 'better' else 'the variant is better' if word == 'worse' else word}"
            f"; time to target {ttt} against the default; utilization {r['utilization_mean']:.2f} vs "
            f"{base['utilization_mean']:.2f}." + _pair_text(entry, label))
    head = (f"Seed-paired differences (the default minus the variant, mean and 95 % interval over "
            f"{int(agg['runs'].max())} seeds). What the default has that the variant lacks **helps** where the "
            f"interval is above 0: {_names(helps)}; it **hurts** where the interval is below 0: {_names(hurts)}; "
            "for every other variant no difference is shown. Per variant:")
    return [head, ""] + lines


def paired_table(entry: dict[str, Any]) -> str:
    """Co-S²P minus each baseline, seed by seed: mean and 95 % interval, and what it shows."""
    metrics = (("acc_budget", 100.0, "pp", True), ("acc_tail", 100.0, "pp", True),
               ("time_to_target_s", 1.0, "s", False), ("utilization", 1.0, "", True), ("mem_demand_gb", 1.0, "GB", False))
    tables = {m: paired_differences(entry["rows"], m, OURS).set_index("other") for m, *_ in metrics}
    header = ["vs baseline", "pairs", "Δ acc. at budget (pp)", "Δ mean acc. last 10 % (pp)", "Δ time to target (s)",
              "Δ utilization", "Δ mean peak mem. (GB)", "accuracy"]
    rows = []
    for other in tables["acc_budget"].index:
        cells = [f"`{other}`", str(int(tables["acc_budget"].loc[other, "n"]))]
        for metric, scale, unit, _ in metrics:
            t = tables[metric]
            if other not in t.index:
                cells.append("–")
                continue
            r = t.loc[other]
            text = _ci_text(r["mean"], r["low"], r["high"], scale, "").strip()
            if metric == "time_to_target_s" and r["n"] < tables["acc_budget"].loc[other, "n"]:
                text += f" ({int(r['n'])} pairs)"
            cells.append(text)
        a = tables["acc_budget"].loc[other]
        cells.append(verdict(a["low"], a["high"]))
        rows.append(cells)
    return markdown_table(header, rows)


def _tau_reading(tau: float) -> str:
    """Kendall's τ in words: the bands a reader needs to tell agreement from noise among ~10 methods."""
    if tau >= 0.6:
        return "the orders agree closely"
    if tau >= 0.3:
        return "the orders agree loosely"
    if tau > -0.3:
        return "the orders are unrelated"
    return "the orders are reversed"


def rank_lines(results: dict[str, Any], metrics: tuple[str, ...] = ("acc_budget", "acc_tail")) -> list[str]:
    """Kendall's τ of the methods' ranks between every two comparison sweeps (proxies or tasks)."""
    comps = [(s, e) for s, e in results.items() if not s.endswith(("ablations", "distillation")) and e["agg"] is not None]
    if len(comps) < 2:
        return []
    rows, readings = [], []
    for i, (sa, ea) in enumerate(comps):
        for sb, eb in comps[i + 1:]:
            cells = [f"{ea['task']} vs {eb['task']}"]
            for m in metrics:
                tau, n = kendall_tau(ea["agg"], eb["agg"], m)
                cells.append("–" if math.isnan(tau) else f"{tau:+.2f} ({n} methods)")
                if m == metrics[-1] and not math.isnan(tau):
                    readings.append(f"{ea['task']} and {eb['task']}: {_tau_reading(tau)}")
            rows.append(cells)
    orders = [f"- {e['task']}: " + " > ".join(f"`{x}`" for x in ranking(e["agg"], "acc_tail")) for _, e in comps]
    return ["## Rank stability across proxies and tasks", "",
            "Kendall's τ-b between the methods' mean accuracies under two setups (1: the same order; 0: unrelated; "
            "−1: reversed). The same task under two proxy models tells whether the ranking is the proxy's; two tasks, "
            "whether it is the task's.", "",
            markdown_table(["setups", "τ, accuracy at budget", "τ, mean accuracy last 10 %"], rows), "",
            "Read plainly (τ of the last 10 %): " + "; ".join(readings) + ". Where the orders are unrelated, a ranking "
            "of these methods is the setup's as much as the method's: trust a difference between two methods only where "
            "it holds in every setup.", "",
            "Order by mean accuracy over the last 10 % of the budget:", ""] + orders + [""]


def _validation_summary(path: Path) -> str:
    if not path.exists():
        return ("The cost-model validation has not been run on this host yet: `python scripts/validate_cost_model.py` "
                "writes [cost_model_validation.md](cost_model_validation.md).")
    match = re.search(r"^\*\*Headline:\*\*(.*?)(?:\n\s*\n|\Z)", path.read_text(), flags=re.M | re.S)
    head = " ".join(match.group(1).split()).replace(" (see below)", "") if match else "see the page"
    return f"[cost_model_validation.md](cost_model_validation.md) (written by `python scripts/validate_cost_model.py`): {head}"


def _runs_table(results: dict[str, Any], planned: list[Any], timings: dict[str, Any]) -> str:
    rows = []
    for stem, entry in results.items():
        mine = [p for p in planned if p.sweep == stem]
        host = sum(timings.get(str(p.run_dir), (0.0, None, 0.0))[2] for p in mine)  # CPU seconds
        labels = list(dict.fromkeys(p.label for p in mine))
        seeds = sorted({p.seed for p in mine})
        rows.append([f"`scenarios/sweeps/{stem}.yaml`", entry["task"], f"{len(labels)}", ", ".join(map(str, seeds)),
                     f"{len(mine) - len(entry['missing'])}/{len(mine)}", f"{entry['budget_s']:.0f}",
                     f"{entry['target']:.0%}", f"{host / 60:.1f}" if host else "(reused)"])
    return markdown_table(["sweep", "task", "variants", "seeds", "runs finished", "simulated budget (s)",
                           "target", "host CPU-min"], rows, "llrrrrrr")


# comparison sweeps that plan the same model as another one and only train a different proxy
SAME_PLAN_AS = {"paper_comparison_vit_small": "image (vit-b-proxy)"}


def _task_sections(stem: str, entry: dict[str, Any]) -> list[str]:
    agg = entry["agg"]
    out = [f"## {entry['task'].capitalize()} task: Co-S²P against every baseline", ""]
    out.append(f"Simulated budget {entry['budget_s']:.0f} s; mean ± std over {int(agg['runs'].max())} seeds. "
               f"`(n/{int(agg['runs'].max())})` = the metric exists in n seeds only (e.g. target reached).")
    if stem in SAME_PLAN_AS:
        out.append(f"The planned model, fleet, network and seeds are those of the {SAME_PLAN_AS[stem]} task; only the "
                   "model trained for accuracy differs. Simulated time, traffic and memory come from the planned "
                   "model, so its timing, memory and utilization figures come out as that task's: only accuracy "
                   "(and with it time to target) tells the two proxies apart.")
    out += ["", method_table(agg, "label", entry["target"]), "",
            "Co-S²P against each baseline (means; Δ > 0 for accuracy and Δ < 0 for memory/time favour Co-S²P):", "",
            claims_table(claims(agg, "label")), "",
            "The same, seed by seed: Co-S²P minus the baseline with the same seed, mean and 95 % Student-t interval "
            "(time to target over the pairs where both reached it):", "",
            paired_table(entry), "",
            "Peak training memory per device class (GB; largest board of the class, mean ± std over seeds):", "",
            memory_table(agg, "label"), "", "Utilization per device class (compute-busy ÷ wall):", "",
            utilization_table(agg, "label"), ""]
    failed = [r["label"] for r in entry["rows"] if r["best_acc"] < 0.2]
    if failed:
        out += [f"Runs that never rose above chance: {_names(sorted(set(failed)))}.", ""]
    return out


CLAIMS = (("Accuracy (paper: up to +8.8 pp)", accuracy_claim),
          ("Resource utilization (paper: up to 1.2×)", utilization_claim),
          ("Memory (paper: about −22 %)", memory_claim),
          ("Training time (paper: about −24 %)", time_claim))


def _summary_table(claim_lines: dict[str, list[str]], tasks: list[dict[str, Any]]) -> list[str]:
    """The verdicts of the claim lines below, one row per claim."""
    rows = []
    for title, texts in claim_lines.items():
        cells = []
        for text in texts:
            found = re.findall(r"→ (\*\*[^*]+\*\*(?: \([^)]*\))?)", text)
            cells.append(found[-1] if found else "–")
        rows.append([title.split(" (")[0], title.split("paper: ")[1].rstrip(")")] + cells)
    return ["## In short", "", markdown_table(["claim", "paper"] + [t["task"] for t in tasks], rows, "ll" + "l" * len(tasks)),
            ""]


def _engine_notes(abl: dict[str, Any] | None) -> list[str]:
    """Ablation variants that collapsed, with the mechanism in fleetsim's semi-async merge."""
    if abl is None:
        return []
    agg = abl["agg"]
    base = _row(agg, "abl-default")
    bad = agg[(agg["best_acc_mean"] < 0.2) & (agg["label"] != "abl-default")]
    if bad.empty or base is None:
        return []
    out = ["## Engine notes", ""]
    for _, r in bad.iterrows():
        out.append(
            f"- `{r['label']}` never rose above chance (best seen {r['best_acc_mean']:.3f}; mean staleness of merged "
            f"updates {r['staleness_mean']:.2f} against {base['staleness_mean']:.2f} for the default). With relative "
            "staleness weights (`staleness_mode: relative`) a buffer of uniformly stale updates is applied at full "
            "size; `absolute` (FedBuff's form) or a server step below 1 damps it.")
    return out + [""]


def _distillation_lines(entry: dict[str, Any] | None) -> list[str]:
    """The knowledge-transfer ablation: every mode against `global` and against `off`, seed-paired."""
    if entry is None or entry["agg"] is None:
        return []
    lines = ["## Knowledge transfer (image task)", "",
             "Co-S²P with each distillation mode (`scenarios/sweeps/paper_distillation.yaml`): off, deepest-exit "
             "self-distillation, DepthFL's mutual distillation, and the global model's deepest exit teaching clients "
             "that cannot hold it (run forward-only on the device and charged to it).", "",
             method_table(entry["agg"], "label", entry["target"]), ""]
    for ref in ("kd-off", "kd-global"):
        d = paired_differences(entry["rows"], "acc_budget", ref)
        if d.empty:
            continue
        lines += [f"Against `{ref}` (the other mode minus it, seed-paired, 95 % interval):", ""]
        lines += [f"- `{r.other}`: {_ci_text(-r.mean, -r.high, -r.low)} → "
                  f"{verdict(-r.high, -r.low)}" for r in d.itertuples()] + [""]
    return lines


def write_page(path: Path, *, results: dict[str, Any], planned: list[Any], timings: dict[str, Any], command: str,
               elapsed_s: float, host: str, reused: bool, validation_file: Path, estimate: str | None = None,
               partial: str | None = None) -> None:
    """The page; `partial` (a sentence: which seeds or budget of the full run this page holds) puts a
    warning under the header, so a page from part of the runs never reads as the full one."""
    tasks = {s: e for s, e in results.items() if not s.endswith(("ablations", "distillation")) and e["agg"] is not None}
    lines = ["# What fleetsim says about the Co-S²P paper's claims", "",
             f"> Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} in {elapsed_s / 60:.1f} minutes"
             f"{' (page rebuilt from existing runs)' if reused else ''} on {host}. Do not edit by hand: rerun the script. "
             "Run folders: `reports/paper/` (git-ignored).", "",
             *([f"> **Partial page.** {partial}", ""] if partial else []),
             "The paper (arXiv 2410.08457, Co-S²P) claims, on 16 heterogeneous Jetsons: accuracy **up to +8.8 %**, "
             "resource utilization **up to 1.2×**, memory **about −22 %** and training time **about −24 %** against "
             "state-of-the-art methods. Below, each claim is set beside what fleetsim's reconstruction of that testbed "
             "gives. A verdict calls a difference only where the 95 % interval of the seed-paired difference excludes 0.", "", "## The claims, one by one", ""]
    summary_at = len(lines) - 2
    claim_lines: dict[str, list[str]] = {}
    for title, fn in CLAIMS:
        claim_lines[title] = [fn(e["task"], e) for e in tasks.values()]
        lines += [f"### {title}", ""] + claim_lines[title] + [""]
    lines[summary_at:summary_at] = (_summary_table(claim_lines, list(tasks.values())) + parts_section(results)
                                    + ["Details, with the numbers behind each verdict:", ""])
    lines += ["## Setup: the paper's and ours", "", SETUP, "", "## What was run", "",
              _runs_table(results, planned, timings), "", BUDGET_NOTE + (f" Here, {estimate}." if estimate else ""), ""]
    failures = {k: t[1] for k, t in timings.items() if t[1]}
    if failures:
        lines += ["Failed runs:", ""] + [f"- `{k}`: {e}" for k, e in failures.items()] + [""]
    for stem, entry in tasks.items():
        lines += _task_sections(stem, entry)
    abl = next((e for s, e in results.items() if s.endswith("ablations") and e["agg"] is not None), None)
    if abl is not None:
        lines += ["## Ablations (image task)", "",
                  "One change at a time around the default (`abl-default` = the image comparison's `co-s2p` runs: the same "
                  "scenario and seeds); same testbed, budget and seeds. Every variant keeps Co-S²P's other parts.", "",
                  method_table(abl["agg"], "label", abl["target"]), "", "Against `abl-default`:", ""]
        lines += ablation_lines(abl) + [""] + _engine_notes(abl)
    lines += _distillation_lines(next((e for s, e in results.items() if s.endswith("distillation")), None))
    lines += rank_lines(results)
    lines += ["## Cost model validation", "", _validation_summary(validation_file), "",
              "## Why the numbers may differ from the paper's", "", CAVEATS, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
