"""``python -m simulator.cli ARGS`` — the same as ``fleetsim ARGS``."""

from simulator.cli.app import main

main()
