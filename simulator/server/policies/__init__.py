"""The built-in aggregation policies, one per file (as Flower's strategies): ``sync`` (FedAvg rounds),
``async_`` (FedAsync), ``buffered`` (FedBuff), ``semi_async`` (Co-S²P). Their shared maths is pure
(``aggregate``); the registry that names them is :mod:`simulator.server.registry`.

A new policy — built in or a plug-in — is one subclass of
:class:`simulator.server.policy.AggregationPolicy`; ``sync.py`` is the shortest model to copy.
"""

from __future__ import annotations

from simulator.server.policies.async_ import Asynchronous, AsyncParams
from simulator.server.policies.buffered import Buffered, BufferedParams
from simulator.server.policies.semi_async import SemiAsynchronous, SemiAsyncParams
from simulator.server.policies.sync import Synchronous, SyncParams

BUILTIN_POLICIES = (Synchronous, Asynchronous, Buffered, SemiAsynchronous)

__all__ = ["BUILTIN_POLICIES", "Asynchronous", "AsyncParams", "Buffered", "BufferedParams",
           "SemiAsynchronous", "SemiAsyncParams", "Synchronous", "SyncParams"]
