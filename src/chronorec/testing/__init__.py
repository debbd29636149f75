"""Helpers for tests and benchmarks, public so that ``benchmarks/`` scripts and ``tests/`` share them
without either loading the other by path.

* :mod:`chronorec.testing.crash`: kill -9 a writer (a model save, a checkpoint, live events) at
  random moments and check that what is left is whole (``benchmarks/crash.py`` runs it at length);
* :mod:`chronorec.testing.cold_start`: the cold-item split of ML-1M and its item texts
  (``benchmarks/cold_start.py``);
* :mod:`chronorec.testing.load`: the server variants and commands of the load test
  (``benchmarks/load_test.py``);
* :mod:`chronorec.testing.peers` and :mod:`chronorec.testing.peers_nbr`: the comparison tables of the
  peer benchmarks (``benchmarks/peers.py``, ``benchmarks/peers_nbr.py``);
* :mod:`chronorec.testing.replay_side` and :mod:`chronorec.testing.nbr_side`: the pure parts of the
  scripts that run in the peers' own virtual environments (``benchmarks/peers_replay.py``,
  ``benchmarks/peers_nbr_runner.py``): they import numpy, torch and the standard library only, never
  the rest of chronorec, so those environments need only ``src`` on their path.

Nothing here is imported by the library itself; this package imports nothing at import time.
"""
