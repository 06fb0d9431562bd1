"""The fixed text of docs/results.md: the paper's figures, the setup table, the caveats and what each
ablation variant changes. Everything computed lives in paper_page.py; this holds only what is true
whatever the numbers are."""

PAPER = {"acc_pp": 8.8, "util_x": 1.2, "mem_rel": -0.22, "time_rel": -0.24}

ABLATION_NOTES = {
    "abl-default": "Co-S²P as in the comparison: semi-async K = 8 / 120 s with relative staleness weights, per-client "
                   "importance width + rolling depth, deepest-exit KD",
    "abl-agg-sync": "synchronous rounds with the same 120 s deadline (same submodels; updates not in by then are dropped)",
    "abl-memfit-semi-async": "semi-async K = 8 / 120 s; submodels fitted to memory only",
    "abl-memfit-async": "FedAsync-style: each update merged on arrival (α = 0.6, polynomial staleness); memory-only submodels",
    "abl-prune-width-only": "width pruning only (each client's own importance units), every device trains all 12 blocks",
    "abl-prune-depth-only": "depth pruning only (rolling window), full width",
    "abl-prune-depth-fixed": "depth pruning only, no rolling: weak devices always train the first blocks",
    "abl-units-static": "width only, static units (HeteroFL: the first units) — compare with `abl-prune-width-only`",
    "abl-units-fleet": "width only, importance units from ONE fleet-wide ranking (the earlier rule) — compare with "
                       "`abl-prune-width-only` (each client's own ranking)",
    "abl-staleness-relative": "relative staleness weights: s(τ) re-weights the updates within a merge only",
    "abl-staleness-absolute": "absolute staleness damping (FedBuff's form): s(τ) scales each update's step",
    "abl-k4": "K = 4 (each merge applies the updates of a quarter of the fleet)",
    "abl-k12": "K = 12", "abl-deadline60": "deadline 60 s", "abl-deadline240": "deadline 240 s",
    "kd-off": "no knowledge transfer", "kd-deepest": "the client's deepest exit teaches its shallower exits (default)",
    "kd-mutual": "every exit learns from every other (DepthFL)",
    "kd-global": "the downloaded global model's deepest exit teaches a client that cannot hold it",
}


SETUP = """| | the paper | fleetsim here |
| :--- | :--- | :--- |
| devices | 16 heterogeneous Jetsons, mix unpublished | 4 Nano 4GB, 4 TX2, 4 Xavier NX (shared Wi-Fi AP, 400 Mb/s), 2 AGX Xavier, 2 AGX Orin 64GB (GbE); always online |
| model scale | "up to 0.11 B parameters", CV and NLP | time, traffic and memory planned for ViT-B/16 at 224² (86 M) and BERT-base at 128 tokens (110 M), Adam |
| what is trained | the large model itself | proxies with the planned family and its 12 blocks (`vit-b-proxy`, `bert-base-proxy`: width 32, 8 heads), so a planned submodel trains the same blocks; a second image proxy (`vit small`: 4 blocks of width 64) for rank stability |
| data | unpublished datasets, non-IID | seeded compositional tasks that need more than a linear read-out and rise slowly: `synthetic-shapes` (16×16 images, a class = two textures anywhere, distractors, noise) and `synthetic-motifs` (16 tokens, a class = two motif tokens shared with other classes, distractors, noisy evidence); Dirichlet α = 0.5 |
| Co-S²P mechanism | only named in the abstract | reconstructed: semi-async K = 8 / 120 s deadline, polynomial staleness (a = 0.5, max 8) as relative weights within each merge (the ablation's choice over FedBuff's absolute damping), per-client Taylor-importance width + rolling depth fitted to memory and deadline (importance batches charged to the device), deepest-exit self-distillation |
| baselines | "state-of-the-art", unnamed | FedAvg, HeteroFL, FedRolex, DepthFL, FedAsync, FedBuff (K = 4, server lr 0.5, absolute staleness damping), FedBuff with memory-fitted HeteroFL submodels (`fedbuff-fit`), TimelyFL (same K and deadline; partial training of the output-side blocks, steps cut to fit), 50 % unstructured magnitude pruning |
| optimizer | unknown | Adam, lr 0.001, batch 32, 3 local epochs |"""

BUDGET_NOTE = (
    "`python scripts/reproduce_paper.py --quick` runs two seeds at a quarter of the budget and prints the estimated "
    "time of this full run from the host time it measured per simulated second of each variant. The server evaluates "
    "every 60 simulated seconds instead of after every merge (a quarter of the asynchronous methods' host time); the "
    "ablations reuse the image comparison's `co-s2p` runs as their default. Ablations run on the image task only.")

CAVEATS = """- **Proxy model.** Accuracy comes from a proxy much narrower than the planned model but with its family
  and its 12 blocks, so depth pruning, rolling windows and cross-block transfer act on the same blocks.
  It cannot tell how much ViT-B's or BERT's own deep blocks add: on these tasks the proxies' exits end up
  close to one another, so a shallow submodel loses less here than it might on ImageNet. A difference in
  accuracy here is a difference in *how much, how fresh and which part of the work reaches the server*,
  on a task a linear read-out cannot solve; it is not what ViT-B or BERT would score.
- **Width floor.** A planned width ratio below the proxy's floor (4 channels, 1 head: 0.125 for the
  width-32 proxies) trains at the floor; the time and memory are still the planned submodel's.
- **Utilization** is compute-busy time ÷ wall time over all 16 boards (`fleet_utilization`). A board
  that cannot fit its model (OOM) or waits for a synchronous round counts as idle; work later dropped as
  too stale still counts as busy. The paper's definition is not published; "1.2×" depends entirely on the
  baseline: synchronous methods idle fast boards while they wait, asynchronous ones never idle.
- **Memory.** Co-S²P lets weak boards train a smaller or shallower submodel, but strong boards still
  train the full model, so its *largest* peak equals FedAvg's. Whether the mean drops by ~22 % depends on
  what the baseline is allowed to do with a board it does not fit: FedAvg, FedAsync, FedBuff and
  unstructured pruning run out of memory on the Nano (full ViT-B/BERT training needs more than its 2.6 GB
  usable) and then use *no* memory there; TimelyFL and `fedbuff-fit` fit it (partial layers, narrower
  submodels). We count an OOM board at the memory it was asked for; the "OOM at 0" column shows the other
  view (what was really allocated). Unstructured (mask) pruning never saves memory.
- **Time to target** is the simulated wall time at which the global proxy model reaches the target on the
  server's held-out split *and stays there* for three evaluations in a row (every 60 simulated seconds,
  so known to ±60 s): the time of the first of them, the rule `stop.target_patience: 3` applies to a
  run. A curve that crosses, dips and crosses again is timed from where it stayed up, not from a lucky
  first crossing. Its value depends on the target chosen.
- **Many intervals at once.** Each interval is a 95 % Student-t interval over the seed pairs of one
  comparison, not corrected for how many comparisons the page makes (nine baselines, several figures,
  three tasks, thirteen ablations): among some hundred intervals a few exclude 0 by chance alone. One
  difference in one task is weak evidence; the same direction in all three tasks is stronger.
- **Everything else the paper did not publish** (K, deadline, staleness law, importance formula,
  distillation weights, device mix, datasets) is our reconstruction: the presets in
  `simulator/config/algorithm.py` (each choice's reason in its comment), the testbed in
  `scenarios/paper_testbed.yaml` and the Setup table above. Device speeds come from the built-in Jetson profiles: the Nano's
  training efficiency is fitted to a published ResNet-18 training measurement on a Nano; the other
  boards carry that efficiency over and take peak FP32, memory bandwidth and power from vendor
  figures. On the three held-out published points the profiles are off by a median of about 35 %
  ([jetson_validation.md](jetson_validation.md)); no board was measured for this page."""
