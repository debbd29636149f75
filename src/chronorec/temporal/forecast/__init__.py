"""Activity forecasting: long-format series, a ladder of forecasters, rolling-origin evaluation.

See :mod:`chronorec.temporal.forecast.core` (models, metrics, plots), :mod:`chronorec.temporal.forecast.data`
(series builders for the benchmark data) and :mod:`chronorec.cli.forecast` (``chronorec forecast``).
"""
