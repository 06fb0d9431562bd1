"""The run folder on disk: its marker, what fleetsim may delete, claiming it, atomic writes
(``folder``), one process per folder (``lock``), checkpoints by deterministic replay (``checkpoint``).

Named ``output`` (the scenario's ``output:`` section says where the folder goes), not ``run``: a
subpackage ``simulator.run`` would shadow the public function :func:`simulator.run`.
"""
