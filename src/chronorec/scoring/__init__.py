"""Scoring primitives below the models: the evaluation cases (:mod:`~chronorec.scoring.cases`), the
full-catalogue ranking and next-basket kernels, the history protocol and the validation metric a
model chooses its epochs on (:mod:`~chronorec.scoring.monitor`). Splits, leak checks, statistics and
reports are :mod:`chronorec.evaluation`, above the models."""
