"""Exports of a run folder for the tools people already use: Chrome trace-event JSON (Perfetto,
chrome://tracing) and CSV tables (spreadsheets). Both stream the event table in batches, so a
10,000-device run exports with flat memory. `fleetsim export` (simulator/cli/export.py) is the CLI.
"""

from simulator.export.chrome_trace import write_chrome_trace
from simulator.export.csv_tables import write_csv_tables

__all__ = ["write_chrome_trace", "write_csv_tables"]
