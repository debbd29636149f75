"""Durations with units: ``45s``, ``30m``, ``2h``, ``1d``, ``1w``, or a plain number in a default unit.

:func:`parse_duration` reads one into whole seconds, :func:`format_duration` writes seconds back in the
largest unit that divides them (``90m`` -> ``"90m"``, ``7200`` -> ``"2h"``), and :func:`nice_duration`
rounds a length down to a "round" one (1, 2, 5, 10, 15, 20, 30 minutes, 1, 2, 3, 6, 8, 12 hours, days).
"""

from __future__ import annotations

import re

from chronorec.errors import ConfigError

__all__ = ["NICE_BELOW_DAY", "UNIT_SECONDS", "format_duration", "nice_duration", "parse_duration"]

UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$")
MAX_SECONDS = 10 * 365 * 86400  # ten years: the bound of every duration option

_NICE = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800)  # seconds below an hour
_NICE += tuple(h * 3600 for h in (1, 2, 3, 6, 8, 12))
NICE_BELOW_DAY = _NICE  # the round lengths below a day, in seconds


def parse_duration(value: str | float | int, *, default_unit: str = "h", name: str = "duration") -> int:
    """Whole seconds from ``30m`` / ``2h`` / ``1d`` / ``1w`` / ``45s``, or a plain number in ``default_unit``.

    Raises :class:`~chronorec.errors.ConfigError` naming ``name`` for anything else, for zero and for
    more than ten years."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a duration such as 30m, 2h or 1d, not {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), default_unit
    else:
        m = _PATTERN.match(str(value).lower())
        if m is None or (m.group(2) and m.group(2) not in UNIT_SECONDS):
            raise ConfigError(
                f"{name} must be a duration such as 45s, 30m, 2h, 1d or 1w (a plain number is in "
                f"{default_unit}), not {value!r}"
            )
        number, unit = float(m.group(1)), m.group(2) or default_unit
    seconds = number * UNIT_SECONDS[unit]
    if not 1 <= seconds <= MAX_SECONDS:
        raise ConfigError(f"{name} must lie between 1s and 10 years, not {value!r}")
    return int(round(seconds))


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that divides them exactly (weeks are written in days)."""
    s = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def nice_duration(seconds: float) -> int:
    """The largest round length at most ``seconds`` (at least 1 s; whole days beyond 12 hours)."""
    if seconds >= 86400:
        return int(seconds // 86400) * 86400
    return max([n for n in _NICE if n <= seconds] or [1])
