"""Helpers the tests share, in one place (fixtures are in tests/conftest.py and each folder's conftest).

- ``scenarios``: profiles with exactly known step times and the small closed-form scenario the core,
  reliability and training tests build on; ``executor_scenario`` for real-training equivalence.
- ``profiles``: the one builder of test device profiles every helper writes through.
- ``cli``: the bad-input tests' valid base scenario and the in-process / subprocess CLI runners.
- ``decoy``: a user's own ``simulator`` package in the working directory, and a script run there (the
  executors' working-directory tests).
- ``markers``: ``needs_ray``, the skip of every Ray test where Ray is not installed.
- ``processes``: children the interrupt tests start (SIGINT at its default in them; none left running).
- ``safety``: timing-only scenarios, the misbehaving plug-in and the subprocess runner of the safety tests.
- ``plan``, ``sweep``, ``export``, ``report_synthetic``, ``report_checks``: each folder's fixtures-to-be.
"""
