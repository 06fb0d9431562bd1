"""The cost model: what a training step, a submodel's memory and its bytes cost on a device.

Modules: ``model`` (ModelCost per block, step time, training memory, bytes), ``meta_trace`` (the
meta-device trace each block's figures come from; torch), ``traced`` (those figures, plain records),
``cache`` (that trace in memory and on disk: a hit needs no torch), ``fit`` and
``calibrate`` (a profile's figures from measured steps), ``memory_probe`` (live bytes of a real step).
Knows nothing of SimPy or of a run: the engine asks it, it never asks the engine.
"""
