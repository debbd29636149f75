"""Activity forecasting: long-format series, a ladder of forecasters, rolling-origin evaluation.

See :mod:`chronorec.temporal.forecast.core` (the ladder and :func:`rolling_origin`, with the public
names of the other modules), :mod:`~chronorec.temporal.forecast.forecaster_config` (each model's
hyper-parameters), :mod:`chronorec.temporal.forecast.data` (series builders for the benchmark data)
and :mod:`chronorec.cli.forecast` (``chronorec forecast``).
"""
