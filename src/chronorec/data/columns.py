"""Canonical column names, declared once for the whole package."""

from chronorec.errors import IngestError

# External (user-facing) columns: ids exactly as they appear in the input data.
USER = "user_id"
ITEM = "item_id"
TIME = "timestamp"
BEHAVIOR = "behavior"
VALUE = "value"
SCORE = "score"
RANK = "rank"

# Internal integer columns of EventLog.events (0 is reserved for padding / unknown).
USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
BEHAVIOR_IDX = "behavior_idx"
ROW = "row"  # 1-based line number of the event in its source, kept for error messages

# Grouping context columns (text ids, kept as context columns of the EventLog): the basket (order,
# invoice) and the session an event belongs to. A context column of the same name plays the same
# role (the next-basket split reads the ``basket`` column, whichever option kept it).
BASKET = "basket"
SESSION = "session"

RESERVED = {USER, ITEM, TIME, BEHAVIOR, VALUE, USER_IDX, ITEM_IDX, BEHAVIOR_IDX, ROW}


def check_distinct(roles: dict[str, str | None], source: str) -> None:
    """Refuse one source column in two roles (e.g. ``user_col == item_col``): every event would
    pair a value with itself. ``roles`` maps an option name (``"user_col"``) to its resolved column."""
    seen: dict[str, str] = {}
    for option, col in roles.items():
        if col is None:
            continue
        if col in seen:
            raise IngestError(
                f"{source}: {seen[col]} and {option} both name column {col!r}; "
                f"each role needs a column of its own (--{seen[col].replace('_', '-')} / --{option.replace('_', '-')})"
            )
        seen[col] = option
