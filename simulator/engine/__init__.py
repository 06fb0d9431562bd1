"""The engine: wires the world (devices, links, server, learner) and runs it to the stop condition.

``simulation`` holds :class:`Simulation` (the one place that wires the parts together) and ``run``
the run object its event loop lives in; the rest are the pieces it wires: ``world`` (building),
``planning`` (each device's submodel), ``workload_info``, ``model_hooks``, ``training``
(ProxyLearner), ``faults`` (fault specs as SimPy processes), ``summary``, ``step_times``,
``failure`` (what stopped a run, as one paragraph).
"""
