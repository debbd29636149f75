"""Canonical column names, declared once for the whole package."""

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

RESERVED = {USER, ITEM, TIME, BEHAVIOR, VALUE, USER_IDX, ITEM_IDX, BEHAVIOR_IDX, ROW}
