"""Long-format series (``series_id, period, y``) from the benchmark data.

* :func:`online_retail_series`: UCI Online Retail daily net revenue or units per product,
  country or customer. Cancellations (invoices starting with ``C``, negative quantities) are
  netted on the day they happen; the rows are cleaned by the data layer's ``online-retail`` recipe
  (non-positive unit price, non-product stock codes such as postage, manual, bank charges, fees).
* :func:`events_series`: any event frame (Taobao, ML-100K) as activity counts per entity and
  period (top-N entities by volume, plus the total as series ``__total__``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from chronorec.temporal.features import activity_series


def online_retail_series(
    *,
    data_dir: str | Path | None = None,
    by: str = "product",
    measure: str = "revenue",
    top: int = 100,
    freq: str = "D",
) -> pd.DataFrame:
    """Daily net ``revenue`` (quantity x unit price) or ``units`` per ``product`` (StockCode),
    ``country`` or ``customer``, for the ``top`` entities by gross revenue; every calendar day of the
    span is a period (days without trade are 0).

    The rows are cleaned by the data layer (:func:`chronorec.data.recipes.retail_lines`: the bundled
    ``online-retail`` recipe's product and price rules); cancellations are netted here, on the day
    they happen, by summing signed quantities.
    """
    from chronorec.data.recipes import retail_lines
    from chronorec.datasets.formats import data_dir as _data_dir

    path = _data_dir(data_dir) / "online-retail" / "online_retail.csv.xz"
    if not path.exists():
        raise FileNotFoundError(f"Online Retail file {path} not found (see shared/data/README.md)")
    df = retail_lines(path, customers_only=by == "customer")
    col = {"product": "StockCode", "country": "Country", "customer": "CustomerID"}[by]
    df = df[df[col].notna()]
    df["revenue"] = df["Quantity"] * df["UnitPrice"]
    df["units"] = df["Quantity"].astype(np.float64)
    df["period"] = pd.to_datetime(df["InvoiceDate"]).dt.floor(freq)
    gross = df[df["Quantity"] > 0].groupby(col)["revenue"].sum().nlargest(top)
    df = df[df[col].isin(gross.index)]
    out = df.groupby([col, "period"], as_index=False)[measure].sum()
    return out.rename(columns={col: "series_id", measure: "y"})


def events_series(
    events: pd.DataFrame,
    *,
    entity: str = "category",
    freq: str = "day",
    top: int = 50,
    utc_offset_hours: float = 0.0,
    total: bool = True,
) -> pd.DataFrame:
    """Event counts per entity and period for the ``top`` entities by volume (plus the total)."""
    keep = events[entity].value_counts().index[:top]
    s = activity_series(events[events[entity].isin(keep)], entity=entity, freq=freq, utc_offset_hours=utc_offset_hours)
    out = s[["series_id", "period", "count"]].rename(columns={"count": "y"})
    out["series_id"] = out["series_id"].astype(str)
    if total:
        ev = events.assign(__all__="__total__")
        t = activity_series(ev, entity="__all__", freq=freq, utc_offset_hours=utc_offset_hours)
        out = pd.concat([out, t[["series_id", "period", "count"]].rename(columns={"count": "y"})], ignore_index=True)
    return out
