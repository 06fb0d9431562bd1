"""Shared links with max-min fair sharing (see ARCHITECTURE.md, "The hot loop").

- :mod:`~simulator.network.sharing`: the division of capacity among flow classes, pure functions;
- :mod:`~simulator.network.levels`: the rates in use, and whether two nearly tie;
- :mod:`~simulator.network.incremental`, :mod:`~simulator.network.stars`: keeping the division up to date;
- :mod:`~simulator.network.flows`: links, flow classes (virtual clocks), transfers;
- :mod:`~simulator.network.heads`: a star's heap of member heads (its next completion);
- :mod:`~simulator.network.network`: :class:`Network`, the SimPy-facing owner of the transfers.
"""

from simulator.network.flows import FlowClass, Link, Transfer
from simulator.network.network import Network

__all__ = ["FlowClass", "Link", "Network", "Transfer"]
