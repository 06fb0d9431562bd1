"""The run's timing traces: typed rows -> Parquet part files -> one file per table.

``columns`` declares every table's columns once (name, type, unit, meaning, vocabulary); the Arrow
schema (``tables``), the struct packing (``packed``) and the reader's column lists are derived from it.
``recorder`` is the TraceRecorder the engine writes through and ``read_table`` reads back.
"""
