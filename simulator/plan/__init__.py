"""``fleetsim plan``: which fleet should I buy? The cheapest (or fastest, or leanest) composition of a
catalogue of devices that meets a goal by a deadline, found by timing-only runs of candidate fleets.

``run_plan(path, out=, jobs=, backend="local"|"ray", budget_runs=, ...)`` runs a plan file (see
:mod:`simulator.plan.spec` for its format) and returns a :class:`PlanResult` whose table has one row
per candidate judged; the plan folder gets ``plan.parquet``/``.csv``, ``best.yaml`` and ``plan.html``.
"""

from simulator.plan.runner import PlanResult, read_table, run_plan
from simulator.plan.spec import LoadedPlan, PlanSpec, load_plan, plan_schema

__all__ = ["LoadedPlan", "PlanResult", "PlanSpec", "load_plan", "plan_schema", "read_table", "run_plan"]
