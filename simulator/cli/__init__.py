"""The ``fleetsim`` command line (see app.py for the commands and where each lives).

``simulator.cli:main`` is the console script; ``python -m simulator.cli`` runs the same app.
"""

from simulator.cli.app import app, main
from simulator.cli.summary import human_bytes

__all__ = ["app", "human_bytes", "main"]
