"""Data recipes: validation, each rule type, the bundled recipes and the retail cleaning they hold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from chronorec.data.recipes import bundled_recipes, load_recipe, retail_lines
from chronorec.errors import ConfigError

RETAIL_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def _retail(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "retail.csv"
    p.write_text("\n".join([RETAIL_HEADER, *rows]) + "\n")
    return p


def test_bundled_recipes_load_by_name():
    assert {"online-retail", "taobao"} <= set(bundled_recipes())
    r = load_recipe("online-retail")
    assert r.timezone == "Europe/London"
    assert [x.name for x in r.rules][:2] == ["no customer", "non-product code"]


def test_retail_lines_drop_non_products_and_keep_cancellations(tmp_path):
    p = _retail(
        tmp_path,
        [
            "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
            "536366,POST,POSTAGE,1,2010-12-01 08:28:00,18.0,17850.0,United Kingdom",
            "536367,gift_0001_10,VOUCHER,1,2010-12-01 08:29:00,10.0,17850.0,United Kingdom",
            "536368,22423,CAKESTAND,2,2010-12-01 08:30:00,0.0,,United Kingdom",
            "C536369,85123A,HEART,-2,2010-12-01 09:00:00,2.55,17850.0,United Kingdom",
            "536370,22423,CAKESTAND,3,2010-12-01 09:30:00,12.75,,France",
        ],
    )
    df = retail_lines(p)
    assert df["StockCode"].tolist() == ["85123A", "85123A", "22423"]  # POST, voucher, zero price gone
    assert df["Quantity"].tolist() == [6, -2, 3]  # the cancellation stays, for netting by sum
    assert retail_lines(p, customers_only=True)["StockCode"].tolist() == ["85123A", "85123A"]


def test_recipe_errors_name_the_file_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("columns: {user: u, itme: i}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: columns.itme: Extra inputs are not permitted"):
        load_recipe(p)
    p.write_text("rules:\n  - {name: x, drop: {column: a, gt: 1, lt: 3}}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: rules.0.*exactly one operator"):
        load_recipe(p)
    with pytest.raises(ConfigError, match="unknown recipe 'nosuch'.*online-retail"):
        load_recipe("nosuch")


def test_condition_operators():
    from chronorec.data.recipes import Condition

    f = pd.DataFrame({"a": ["1", "5", None, "x", " 7 "]})
    assert Condition(column="a", gt=2).mask(f).tolist() == [False, True, False, False, True]
    assert Condition.model_validate({"column": "a", "in": [1, "x"]}).mask(f).tolist() == [
        True,
        False,
        False,
        True,
        False,
    ]
    assert Condition(column="a", not_in=["1"]).mask(f).tolist() == [False, True, False, True, True]
    assert Condition(column="a", regex="^[0-9]").mask(f).tolist() == [True, True, False, False, True]
    assert Condition(column="a", missing=True).mask(f).tolist() == [False, False, True, False, False]
    assert Condition(column="a", eq="x").mask(f).tolist() == [False, False, False, True, False]
    assert Condition(column="a", ne=5).mask(f).tolist() == [True, False, False, True, True]
