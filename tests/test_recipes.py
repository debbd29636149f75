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


# ----------------------------------------------------------------------------- ingest with rules
def _ingest(tmp_path: Path, csv: str, recipe: str, **kwargs):
    from chronorec.data import read_events

    data = tmp_path / "log.csv"
    data.write_text(csv)
    rp = tmp_path / "recipe.yaml"
    rp.write_text(recipe)
    return read_events(data, recipe=rp, **kwargs)


def _identity(rep) -> int:
    return (
        rep.rows_kept + rep.rows_rejected + rep.duplicates_removed + rep.kcore_removed + sum(rep.rules_removed.values())
    )


PLANTED = """u,i,t,price,qty,kind
1,A,100,2.0,1,buy
1,POST,101,5.0,1,buy
1,A,102,0.0,1,buy
2,gift_9,103,1.0,1,buy
2,B,104,1.0,1,buy
2,B,104,1.0,1,buy
,B,105,1.0,1,buy
3,C,106,3.0,1,buy
3,C,107,3.0,20,buy
3,D,108,3.0,1,click
4,E,,1.0,1,buy
"""


@pytest.mark.parametrize(
    ("rule", "name", "removed"),
    [
        ("{name: codes, drop: {column: i, in: [POST, D]}}", "codes", 2),
        ("{name: voucher, drop: {column: i, regex: '^gift_'}}", "voucher", 1),
        ("{name: free, require: {column: price, gt: 0}}", "free", 1),
        ("{name: guest, drop: {column: u, missing: true}}", "guest", 1),
        ("{name: bulk, drop: {column: qty, ge: 10}}", "bulk", 1),
        ("{name: cheap, drop: [{column: price, lt: 1.5}, {column: price, le: 1.0}]}", "cheap", 6),
        ("{name: not-buys, require: {column: kind, eq: buy}}", "not-buys", 1),
        ("{name: clicks, drop: {column: kind, ne: buy}}", "clicks", 1),
        ("{name: only, require: {column: i, not_in: [POST]}}", "only", 1),
    ],
)
def test_every_rule_type_is_counted_and_the_accounting_is_exact(tmp_path, rule, name, removed):
    recipe = f"columns: {{user: u, item: i, time: t}}\nrules:\n  - {rule}\n"
    log = _ingest(tmp_path, PLANTED, recipe, min_item_events=2)
    rep = log.report
    assert rep.rules_removed == {name: removed}
    assert rep.rows_read == 11 == _identity(rep)
    assert rep.balanced
    assert name in rep.summary() and ": OK" in rep.summary()
    assert rep.to_dict()["rules_removed"] == {name: removed}


def test_rules_count_first_match_and_combine_with_rejects_duplicates_and_kcore(tmp_path):
    recipe = """
columns: {user: u, item: i, time: t}
rules:
  - {name: non-product, drop: {column: i, in: [POST]}}
  - {name: voucher, drop: {column: i, regex: "^gift_"}}
  - {name: free, require: {column: price, gt: 0}}
  - {name: guest, drop: {column: u, missing: true}}
"""
    log = _ingest(tmp_path, PLANTED, recipe, min_item_events=2)
    rep = log.report
    assert rep.rules_removed == {"non-product": 1, "voucher": 1, "free": 1, "guest": 1}
    assert rep.rows_rejected == 1  # missing timestamp
    assert rep.duplicates_removed == 1  # the second (2, B, 104)
    assert rep.kcore_removed == 3  # the items seen once: A, B (after dedupe) and D
    assert rep.rows_read == _identity(rep) and rep.balanced
    assert "POST" not in set(log.items.external_ids.astype(str))


def test_behaviour_rules_and_mapping(tmp_path):
    recipe = """
columns: {user: u, item: i, time: t, behavior: kind}
behaviors: {buy: purchase, click: view}
rules:
  - {name: refund, behavior: return, when: {column: qty, ge: 10}}
"""
    log = _ingest(tmp_path, PLANTED.replace("3,D,108,3.0,1,click", "3,D,108,3.0,1,hover"), recipe)
    rep = log.report
    assert rep.rules_tagged == {"return": 1}
    assert rep.rejects_by_reason == {"missing user": 1, "missing timestamp": 1, "unknown behavior": 1}
    frame = log.to_external_frame()
    assert sorted(set(frame["behavior"])) == ["purchase", "return"]
    assert frame.loc[frame["timestamp"] == 107, "behavior"].item() == "return"
    assert rep.balanced


def test_net_cancellations_against_earlier_purchases(tmp_path):
    csv = """inv,u,i,t,qty
1,1,A,100,5
2,1,B,101,2
C3,1,A,102,-2
C4,1,B,103,-2
C5,1,Z,104,-4
6,1,A,105,1
C7,2,A,106,-1
8,2,A,107,3
"""
    recipe = """
columns: {user: u, item: i, time: t, value: qty}
rules:
  - name: cancellation
    net: true
    when: [{column: inv, regex: "^C"}, {column: qty, lt: 0}]
"""
    log = _ingest(tmp_path, csv, recipe)
    rep = log.report
    assert rep.rules_removed == {"cancellation": 4, "cancellation: netted purchase": 1}
    assert rep.net_unmatched == 5  # Z (4) and user 2's cancellation before their purchase (1)
    f = log.to_external_frame().sort_values("timestamp")
    assert f["item_id"].tolist() == ["A", "A", "A"]
    assert f["value"].tolist() == [3.0, 1.0, 3.0]  # 5 - 2, untouched, user 2's later purchase
    assert rep.rows_read == 8 == _identity(rep)


def test_recipe_sets_reading_options_and_explicit_options_win(tmp_path):
    csv = "7;x;1600000000;pv\n8;y;1600000001;buy\n"
    recipe = """
header: false
names: [user, item, time, behavior]
sep: ";"
columns: {user: user, item: item, time: time, behavior: behavior}
"""
    log = _ingest(tmp_path, csv, recipe)
    assert len(log) == 2 and set(log.behaviors.external_ids) == {"pv", "buy"}
    # explicit options beat the recipe's
    names = ["a", "b", "c", "d"]
    log = _ingest(tmp_path, csv, recipe, names=names, user_col="b", item_col="a", time_col="c", behavior_col="d")
    assert sorted(log.items.external_ids.tolist()) == [7, 8]


def test_bundled_taobao_recipe_on_a_planted_file(tmp_path):
    from chronorec.data import read_events

    p = tmp_path / "UserBehavior.csv"
    p.write_text("1,10,5,pv,1511544070\n1,11,5,buy,1511544080\n2,10,5,cart,1400000000\n2,12,6,fav,1511600000\n")
    log = read_events(p, recipe="taobao")
    assert log.report.rules_removed == {"outside the nine days": 1}
    assert set(log.behaviors.external_ids) == {"pv", "buy", "fav"}
    assert log.context_columns == ("category",)
    assert log.report.balanced


def test_online_retail_recipe_on_a_planted_log(tmp_path):
    from chronorec.data import read_events

    p = _retail(
        tmp_path,
        [
            "536365,85123A,HEART,6,2011-06-01 10:00:00,2.55,17850.0,United Kingdom",
            "536366,POST,POSTAGE,1,2011-06-01 10:00:00,18.0,17850.0,United Kingdom",
            "536366,BANK CHARGES,Bank Charges,1,2011-06-01 10:00:00,15.0,17850.0,United Kingdom",
            "536367,22423,CAKESTAND,2,2011-06-01 11:00:00,0.0,17850.0,United Kingdom",
            "C536369,85123A,HEART,-6,2011-06-02 09:00:00,2.55,17850.0,United Kingdom",
            "536370,22423,CAKESTAND,3,2011-06-02 09:30:00,12.75,,France",
            "536371,22423,CAKESTAND,1,2011-06-03 09:30:00,12.75,13047.0,United Kingdom",
        ],
    )
    log = read_events(p, recipe="online-retail")
    rep = log.report
    assert rep.rules_removed == {
        "no customer": 1,
        "non-product code": 2,
        "gift voucher": 0,
        "price not positive": 1,
        "cancellation": 1,
        "cancellation: netted purchase": 1,
    }
    assert rep.rules_values["non-product code"] == {"POST": 1, "BANK CHARGES": 1}  # dropped codes, by name
    assert "POST: 1, BANK CHARGES: 1" in rep.summary()
    assert log.items.external_ids.astype(str).tolist() == ["22423"]
    assert log.users.external_ids.tolist() == [13047]
    # 2011-06-03 09:30 in London is 08:30 UTC (summer time)
    assert int(log.events["timestamp"].iloc[0]) == int(pd.Timestamp("2011-06-03 08:30", tz="UTC").timestamp())
    assert rep.timezone == "Europe/London" and rep.naive_timestamps == 3  # the rows left after the rules
    assert rep.balanced and rep.rows_read == 7


def test_unknown_timezone_and_missing_rule_column_are_one_line_errors(tmp_path):
    from chronorec.data import read_events

    p = tmp_path / "e.csv"
    p.write_text("u,i,t\n1,a,1600000000\n")
    with pytest.raises(ConfigError, match="unknown timezone 'Mars/Base'"):
        read_events(p, user_col="u", item_col="i", time_col="t", timezone="Mars/Base")
    rp = tmp_path / "r.yaml"
    rp.write_text("timezone: Mars/Base\n")
    with pytest.raises(ConfigError, match="r.yaml: timezone: .*unknown timezone"):
        load_recipe(rp)
    rp.write_text("columns: {user: u, item: i, time: t}\nrules:\n  - {name: r1, drop: {column: price, gt: 0}}\n")
    with pytest.raises(ConfigError, match=r"r.yaml: rule 'r1': no column 'price'.*'u', 'i', 't'"):
        read_events(p, recipe=rp)


def test_bundled_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    # A work folder called "taobao" in the current directory made `--recipe taobao` fail.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taobao").mkdir()
    assert load_recipe("taobao").source == "taobao (bundled)"
    with pytest.raises(ConfigError, match="recipe file .*missing.yaml not found"):
        load_recipe("missing.yaml")
