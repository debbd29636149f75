"""Activity forecasting: long-format series, a ladder of forecasters, rolling-origin evaluation.

See :mod:`chronorec.forecast.core` (models, metrics, plots), :mod:`chronorec.forecast.data`
(series builders for the benchmark data) and :mod:`chronorec.forecast.cli` (``chronorec forecast``).
"""
