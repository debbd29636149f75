"""Costs checked before they are paid: a job whose memory grows with an option estimates it first and
refuses with one line naming the option, instead of growing until the kernel kills it."""

from __future__ import annotations

from chronorec.errors import ConfigError

__all__ = ["GiB", "available_bytes", "check_memory"]

GiB = 1024**3
HEADROOM = 0.8  # share of the available memory a job may plan to use


def available_bytes() -> int:
    """Memory the machine can give now (``psutil``'s available: free plus reclaimable caches)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(need: float, what: str, fix: str, *, budget: float | None = None) -> None:
    """Raise :class:`ConfigError` when ``need`` bytes exceed ``budget`` (default: 80 % of the memory
    available now): ``"<what> needs about N GiB, more than the M GiB available; <fix>"``."""
    limit = HEADROOM * available_bytes() if budget is None else float(budget)
    if need > limit:
        raise ConfigError(
            f"{what} needs about {need / GiB:,.1f} GiB, more than the {limit / GiB:,.1f} GiB {'allowed' if budget is not None else 'available'}; {fix}"
        )
