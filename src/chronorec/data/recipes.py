"""Data recipes: how to read one kind of log, in a small YAML file.

A recipe names the source columns (``columns``), maps raw behaviour values to behaviour names
(``behaviors``), sets the reading options a file needs (``header``, ``names``, ``sep``,
``encoding``, ``timezone``, ``time_unit``) and lists row ``rules``, applied in order before the
rows are validated:

* ``drop``: remove the rows where a condition holds (a list: where any holds);
* ``require``: remove the rows where a condition does not hold (a list: all must hold);
* ``behavior`` + ``when``: rows where a condition holds get this behaviour (they are kept);
* ``net`` + ``when``: the matching rows are cancellations; each is netted against the same user's
  earlier purchases of the same item (quantity = the ``value`` column), latest first; the
  cancellation row and every purchase it cancels in full are removed, a purchase cancelled in part
  keeps the remaining quantity.

A condition is ``{column: NAME, OP: VALUE}`` with exactly one operator: ``eq``, ``ne``, ``lt``,
``le``, ``gt``, ``ge`` (numbers compare as numbers), ``in``, ``not_in`` (lists, compared as
text), ``regex`` (a search, anchored with ``^``/``$``, in linear time: no look-around or back-references)
or ``missing`` (true/false). A missing
value satisfies no operator but ``missing: true``.

Every row removed by a rule is counted under the rule's ``name`` in the ingest report; a row is
counted under the first rule that removes it. Recipes shipped with the package (``online-retail``,
``taobao``) are usable by name; any other argument is a path to a YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from chronorec.data import columns as C
from chronorec.data.text_checks import expanded_size, regex_search
from chronorec.errors import ConfigError
from chronorec.settings import Strict

__all__ = [
    "Condition",
    "Recipe",
    "RecipeColumns",
    "RuleResult",
    "Rule",
    "apply_rules",
    "bundled_recipes",
    "check_timezone",
    "prepare_rows",
    "load_recipe",
    "net_cancellations",
    "recipe_rows",
    "with_recipe_defaults",
    "retail_lines",
]

_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in_", "not_in", "regex", "missing")
_NUMERIC = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}


class Condition(Strict):
    """One test on one column; exactly one operator."""

    model_config = {"extra": "forbid", "populate_by_name": True}

    column: str
    eq: float | str | None = None
    ne: float | str | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None
    regex: str | None = None
    missing: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> "Condition":
        given = [op.rstrip("_") for op in _OPS if getattr(self, op) is not None]
        if len(given) != 1:
            ops = ", ".join(op.rstrip("_") for op in _OPS)
            raise ValueError(f"condition on {self.column!r} needs exactly one operator of {ops}; got {given or 'none'}")
        return self

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            regex_search(pd.Series([""], dtype=object), v)  # compiles it, or says why not
        return v

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Where the condition holds (False for missing values unless ``missing: true``)."""
        if self.column not in frame.columns:
            present = ", ".join(repr(str(c)) for c in frame.columns)
            raise ConfigError(f"no column {self.column!r} in the data; columns present: {present}")
        s = frame[self.column]
        miss = s.isna().to_numpy()
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            text = s.astype(str).str.strip()
            miss = miss | (text == "").to_numpy()
        else:
            text = s.astype(str)
        if self.missing is not None:
            return miss if self.missing else ~miss
        for op, fn in _NUMERIC.items():
            if getattr(self, op) is not None:
                num = pd.to_numeric(text.where(~miss), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                with np.errstate(invalid="ignore"):
                    return np.asarray(fn(num, getattr(self, op))) & np.isfinite(num)
        if self.eq is not None or self.ne is not None:
            v = self.eq if self.eq is not None else self.ne
            if isinstance(v, float | int):
                num = pd.to_numeric(text.where(~miss), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                hit = num == float(v)
            else:
                hit = (text == str(v)).to_numpy()
            out = hit if self.eq is not None else ~hit
        elif self.in_ is not None or self.not_in is not None:
            hit = text.isin([str(v) for v in (self.in_ if self.in_ is not None else self.not_in)]).to_numpy()
            out = hit if self.in_ is not None else ~hit
        else:
            out = regex_search(text, self.regex)
        return out & ~miss


Conditions = Condition | list[Condition]


def _as_list(c: Conditions | None) -> list[Condition]:
    return [] if c is None else (c if isinstance(c, list) else [c])


class Rule(Strict):
    """A named row rule: exactly one of ``drop``, ``require``, ``behavior`` (with ``when``) or
    ``net: true`` (with ``when``)."""

    name: str = Field(min_length=1)
    drop: Conditions | None = None
    require: Conditions | None = None
    behavior: str | None = None
    net: bool = False
    when: Conditions | None = None

    @model_validator(mode="after")
    def _one_action(self) -> "Rule":
        actions = [a for a in ("drop", "require", "behavior") if getattr(self, a) is not None] + (
            ["net"] if self.net else []
        )
        if len(actions) != 1:
            raise ValueError(f"rule {self.name!r} needs exactly one of drop, require, behavior, net; got {actions}")
        if (self.behavior is not None or self.net) != (self.when is not None):
            raise ValueError(f"rule {self.name!r}: 'when' goes with 'behavior' or 'net', and they need it")
        return self

    @property
    def action(self) -> str:
        return "drop" if self.drop else "require" if self.require else "behavior" if self.behavior else "net"

    def matches(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows the rule acts on: dropped (drop / require), tagged (behavior) or netted (net)."""
        if self.require is not None:
            ok = np.ones(len(frame), dtype=bool)
            for c in _as_list(self.require):
                ok &= c.mask(frame)
            return ~ok
        hit = np.zeros(len(frame), dtype=bool)
        for c in _as_list(self.drop if self.drop is not None else self.when):
            hit |= c.mask(frame)
        return hit


ColumnIndex = Annotated[int, Field(ge=0, le=100_000)]
"""A column given by position (0 = the first) in a file without a header."""


class RecipeColumns(Strict):
    """Source column names (or 0-based positions) for each role."""

    user: str | ColumnIndex = C.USER
    item: str | ColumnIndex = C.ITEM
    time: str | ColumnIndex | None = C.TIME
    behavior: str | ColumnIndex | None = None
    value: str | ColumnIndex | None = None
    item_name: str | ColumnIndex | None = None
    context: list[str | ColumnIndex] = Field(default_factory=list)
    basket: str | ColumnIndex | None = Field(None, description="basket / order / invoice id column (kept as 'basket')")
    session: str | ColumnIndex | None = Field(None, description="session id column (kept as 'session')")


class Recipe(Strict):
    """A data recipe (see the module docstring)."""

    description: str = ""
    header: bool | None = None
    names: list[str] | None = None
    sep: str | None = None
    encoding: str | None = None
    timezone: str | None = None
    time_unit: str | None = None
    format: str | None = None
    columns: RecipeColumns = Field(default_factory=RecipeColumns)
    behaviors: dict[str, str] = Field(default_factory=dict, description="raw behaviour value -> behaviour name")
    default_behavior: str | None = Field(None, description="behaviour of rows no 'behavior' rule tags")
    rules: list[Rule] = Field(default_factory=list)
    source: str = Field("<recipe>", exclude=True)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            check_timezone(v, error=ValueError)
        return v

    def behavior_names(self) -> list[str]:
        """Every behaviour this recipe can produce (mapped, set by a rule, or the default)."""
        out = [*self.behaviors.values(), *(r.behavior for r in self.rules if r.behavior)]
        return out + ([self.default_behavior] if self.default_behavior else [])

    @model_validator(mode="after")
    def _checks(self) -> "Recipe":
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rules: duplicate names {dup}")
        if any(r.net for r in self.rules) and self.columns.value is None:
            raise ValueError("a 'net' rule needs columns.value (the quantity column)")
        if self.behaviors and self.columns.behavior is None:
            raise ValueError("'behaviors' maps values of columns.behavior, which is not set")
        return self

    def read_options(self) -> dict[str, Any]:
        """The ``read_events`` keywords this recipe sets (others are left to the caller)."""
        c = self.columns
        out: dict[str, Any] = {
            "user_col": c.user,
            "item_col": c.item,
            "time_col": c.time,
            "behavior_col": c.behavior,
            "value_col": c.value,
            "context_cols": list(c.context),
            "item_name_col": c.item_name,
            "basket_col": c.basket,
            "session_col": c.session,
            "header": self.header,
            "names": self.names,
            "sep": self.sep,
            "encoding": self.encoding,
            "timezone": self.timezone,
            "time_unit": self.time_unit,
            "fmt": self.format,
        }
        return {k: v for k, v in out.items() if v is not None and v != []}


def check_timezone(zone: str, error: type[Exception] = ConfigError) -> None:
    """Refuse a name that is not an IANA time zone (``Europe/London``, ``UTC``, ...)."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise error(f"unknown timezone {zone!r}; use an IANA name such as 'Europe/London' or 'UTC'") from None


def with_recipe_defaults(recipe: Recipe, given: dict[str, Any], fn: Any) -> dict[str, Any]:
    """``given`` (a reader's keyword arguments) with every value still at ``fn``'s default replaced
    by the recipe's (so an explicit option wins over the recipe)."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()}
    out = dict(given)
    for key, value in recipe.read_options().items():
        if key in out and _same(out[key], defaults.get(key)):
            out[key] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return a is b or (type(a) is type(b) and a == b)


def bundled_recipes() -> list[str]:
    """Names of the recipes shipped with the package."""
    folder = resources.files("chronorec.data") / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


MAX_RECIPE_CHARS = 1_000_000
MAX_RECIPE_NODES = 100_000
"""A recipe's size limits: its text, and the values it expands to (YAML aliases share one object
per anchor, so ten nested aliases of ten make 10^10 values to validate from a 0.6 KB file)."""


def load_recipe(recipe: str | Path | Recipe) -> Recipe:
    """A bundled recipe by name, or a recipe YAML file; raises ConfigError naming the file and key."""
    if isinstance(recipe, Recipe):
        return recipe
    import yaml

    text, where = _recipe_text(str(recipe))
    if len(text) > MAX_RECIPE_CHARS:
        raise ConfigError(f"{where}: {len(text):,} characters; a recipe holds at most {MAX_RECIPE_CHARS:,}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: cannot parse: {' '.join(str(e).split())}") from None
    if expanded_size(data, MAX_RECIPE_NODES) > MAX_RECIPE_NODES:
        raise ConfigError(
            f"{where}: expands to more than {MAX_RECIPE_NODES:,} values (nested YAML aliases?); "
            "write the rules out, without aliases that multiply"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a recipe is a mapping (columns, behaviors, rules, ...)")
    try:
        out = Recipe.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise ConfigError(f"{where}: {key}: {err['msg']}{more}") from None
    out.source = where
    return out


def _recipe_text(arg: str) -> tuple[str, str]:
    p = Path(arg)
    if p.is_file():
        return p.read_text(), str(p)
    bundled = resources.files("chronorec.data") / "recipes" / f"{arg}.yaml"
    if p.suffix.lower() in (".yaml", ".yml") or (p.exists() and not bundled.is_file()):
        raise ConfigError(f"recipe file {p} not found; bundled recipes: {', '.join(bundled_recipes())}")
    if not bundled.is_file():
        raise ConfigError(
            f"unknown recipe {arg!r}: not a file, and the bundled recipes are {', '.join(bundled_recipes())}"
        )
    return bundled.read_text(), f"{arg} (bundled)"


@dataclass
class RuleResult:
    """What the rules did to a raw frame: the rows to keep, the removed count per rule name, the
    behaviour set by rules (None where none did) and the rows to net."""

    keep: np.ndarray
    removed: dict[str, int] = field(default_factory=dict)
    behavior: np.ndarray | None = None
    net: np.ndarray | None = None
    net_rule: str | None = None
    values: dict[str, dict[str, int]] = field(default_factory=dict)  # rule -> the removed values it tests, counted


def apply_rules(frame: pd.DataFrame, rules: list[Rule], where: str = "recipe") -> RuleResult:
    """Run the row rules in order over a raw frame (a row is counted by the first rule that removes it)."""
    n = len(frame)
    keep = np.ones(n, dtype=bool)
    out = RuleResult(keep)
    for rule in rules:
        try:
            hit = rule.matches(frame) & keep
        except ConfigError as e:
            raise ConfigError(f"{where}: rule {rule.name!r}: {e}") from None
        if rule.action in ("drop", "require"):
            keep &= ~hit
            out.removed[rule.name] = int(hit.sum())
            out.values[rule.name] = _value_counts(frame, rule, hit)
        elif rule.action == "behavior":
            if out.behavior is None:
                out.behavior = np.full(n, None, dtype=object)
            free = hit & pd.isna(out.behavior)
            out.behavior[free] = rule.behavior
        else:
            out.net = hit if out.net is None else out.net | hit
            out.net_rule = rule.name
    return out


def _value_counts(frame: pd.DataFrame, rule: Rule, hit: np.ndarray, top: int = 20) -> dict[str, int]:
    """The removed rows' values of the column a one-column rule tests, most frequent first (empty
    when there are more than ``top`` distinct ones)."""
    conds = _as_list(rule.drop if rule.drop is not None else rule.require)
    if len({c.column for c in conds}) != 1 or any(c.missing is not None for c in conds) or not hit.any():
        return {}
    vc = frame.loc[hit, conds[0].column].astype(str).str.strip().value_counts()
    if len(vc) > top:  # many distinct values (times, prices): a list would say nothing
        return {}
    return {str(k): int(v) for k, v in vc.items()}


@dataclass
class PreparedRows:
    """Raw rows after a recipe's rules: what :func:`prepare_rows` returns."""

    frame: pd.DataFrame
    lines: np.ndarray
    behavior_col: str | None  # the column now holding behaviours, when the recipe made one
    removed: dict[str, int]
    values: dict[str, dict[str, int]]
    tagged: dict[str, int]
    net: tuple[np.ndarray, str] | None  # source lines a net rule marks, and its name


def prepare_rows(frame: pd.DataFrame, lines: np.ndarray, recipe: Recipe, behavior_col: str | None) -> PreparedRows:
    """Apply a recipe to raw rows: drop what its rules remove, map raw behaviour values to names
    (``behavior_col`` is the source behaviour column, if any) and put rule-set behaviours in a
    column of their own (``__behavior__``)."""
    res = apply_rules(frame, recipe.rules, recipe.source)
    frame, keep, tagged, new_col = frame.copy(), res.keep, {}, None
    if recipe.behaviors and behavior_col is not None:
        text = frame[behavior_col].astype(str).str.strip()
        frame[behavior_col] = text.map(recipe.behaviors).where(text.isin(list(recipe.behaviors)), frame[behavior_col])
    if res.behavior is not None or recipe.default_behavior is not None:
        set_by_rule = res.behavior if res.behavior is not None else np.full(len(frame), None, dtype=object)
        base = frame[behavior_col] if behavior_col is not None else recipe.default_behavior
        new_col = "__behavior__"
        frame[new_col] = pd.Series(set_by_rule, index=frame.index).fillna(pd.Series(base, index=frame.index))
        for name in [r.behavior for r in recipe.rules if r.behavior]:
            tagged[name] = int(((set_by_rule == name) & keep).sum())
    net = (lines[res.net & keep], res.net_rule or "net") if res.net is not None else None
    values = {k: v for k, v in res.values.items() if v}
    return PreparedRows(frame.loc[keep].reset_index(drop=True), lines[keep], new_col, res.removed, values, tagged, net)


def net_cancellations(df: pd.DataFrame, cancel: np.ndarray, name: str) -> tuple[pd.DataFrame, dict[str, int], float]:
    """Net cancellation rows against the same user's earlier purchases of the same item.

    ``df`` is a canonical event frame with ``value`` as the quantity (cancellations may carry a
    negative or positive quantity: its absolute value is cancelled). Each cancellation takes
    quantity from the latest purchases at or before it (by timestamp, then source row). Returns
    the frame without the cancellation rows and the purchases cancelled in full (partly cancelled
    purchases keep the rest as their value), the rows removed as ``{name: n, f"{name}: netted
    purchase": m}``, and the cancelled quantity that matched no earlier purchase.
    """
    cancel = np.asarray(cancel, dtype=bool)
    qty = df[C.VALUE].to_numpy(dtype=np.float64).copy()
    order = np.lexsort((df[C.ROW].to_numpy(), df[C.TIME].to_numpy()))
    users, items = df[C.USER].to_numpy(), df[C.ITEM].to_numpy()
    open_buys: dict[tuple[Any, Any], list[int]] = {}
    unmatched = 0.0
    for i in order:
        key = (users[i], items[i])
        if not cancel[i]:
            if qty[i] > 0:
                open_buys.setdefault(key, []).append(i)
            continue
        left = abs(qty[i])
        stack = open_buys.get(key, [])
        while left > 0 and stack:
            j = stack[-1]
            take = min(left, qty[j])
            qty[j] -= take
            left -= take
            if qty[j] <= 0:
                stack.pop()
        unmatched += left
    gone = cancel | (~cancel & (qty <= 0) & (df[C.VALUE].to_numpy(dtype=np.float64) > 0))
    out = df.loc[~gone].copy()
    out[C.VALUE] = qty[~gone]
    removed = {name: int(cancel.sum()), f"{name}: netted purchase": int((gone & ~cancel).sum())}
    return out, removed, float(unmatched)


def recipe_rows(
    path: str | Path, recipe: str | Path | Recipe, *, skip: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The raw rows of a file (all source columns, as text) that pass the recipe's ``drop`` and
    ``require`` rules, except the rules named in ``skip``; and the rows removed per rule."""
    from chronorec.data.readers import read_raw

    r = load_recipe(recipe)
    opts = {k: v for k, v in r.read_options().items() if k in ("header", "names", "sep", "encoding", "fmt")}
    raw = read_raw(path, **opts)
    rules = [x for x in r.rules if x.action in ("drop", "require") and x.name not in skip]
    res = apply_rules(raw.frame, rules)
    return raw.frame.loc[res.keep].reset_index(drop=True), res.removed


def retail_lines(path: str | Path, *, customers_only: bool = False) -> pd.DataFrame:
    """UCI Online Retail invoice lines cleaned by the bundled ``online-retail`` recipe's row rules
    (non-product codes, gift vouchers, non-positive prices; guest rows only with
    ``customers_only``), cancellations kept with their negative quantities (for netting by sum).
    ``Quantity`` and ``UnitPrice`` are numeric, the other columns text."""
    df, _ = recipe_rows(path, "online-retail", skip=() if customers_only else ("no customer",))
    df["Quantity"] = pd.to_numeric(df["Quantity"]).astype(np.int64)
    df["UnitPrice"] = pd.to_numeric(df["UnitPrice"]).astype(np.float64)
    return df
