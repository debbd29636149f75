import numpy as np
import pandas as pd
import pytest

from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.evaluation.split import leave_one_out, temporal_split


def _log(seed=0, n_users=30):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = int(rng.integers(1, 12))
        ts = np.sort(rng.integers(0, 1000, n))
        ts[: n // 2] = ts[0]  # many timestamp ties: the stable order must decide
        for t in ts:
            rows.append((f"u{u}", f"i{int(rng.integers(0, 40))}", int(t)))
    return EventLog.from_frame(pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIME]))


def test_leave_one_out_targets_never_in_training():
    log = _log()
    sp = leave_one_out(log)
    train_rows = set(sp.train.events[C.ROW])
    store = log.sequences()
    for r, u in enumerate(sp.test.users):
        seq_rows = log.events[C.ROW].to_numpy()[store.offsets[u] : store.offsets[u + 1]]
        assert seq_rows[-1] not in train_rows and seq_rows[-2] not in train_rows
        assert np.array_equal(sp.test.inputs([r])[0], store.user_items(u)[:-1])
        assert np.array_equal(sp.validation.inputs([r])[0], store.user_items(u)[:-2])
        assert sp.test.targets([r])[0][0] == store.user_items(u)[-1]
    # users with fewer than 3 events stay in training, unevaluated
    short = np.flatnonzero((store.lengths >= 1) & (store.lengths < 3))
    assert set(short).isdisjoint(sp.test.users)
    assert len(sp.train) + 2 * len(sp.test) == len(log)


def test_stable_order_decides_ties():
    df = pd.DataFrame({C.USER: ["a"] * 4, C.ITEM: ["x", "y", "z", "w"], C.TIME: [5, 5, 5, 5]})
    sp = leave_one_out(EventLog.from_frame(df))
    log_items = sp.train.items
    assert log_items.to_external(sp.test.targets([0])[0]).tolist() == ["w"]
    assert log_items.to_external(sp.validation.targets([0])[0]).tolist() == ["z"]


def test_temporal_split_has_no_future_in_training():
    log = _log(1)
    cut, vcut = 700, 500
    sp = temporal_split(log, test_cutoff=cut, validation_cutoff=vcut)
    assert sp.train.events[C.TIME].max() < vcut
    ts = log.events[C.TIME].to_numpy()
    items = log.events[C.ITEM_IDX].to_numpy()
    users = log.events[C.USER_IDX].to_numpy()
    for r, u in enumerate(sp.test.users):
        hist = sp.test.inputs([r])[0]
        assert np.array_equal(hist, items[(users == u) & (ts < cut)])
        assert set(sp.test.targets([r])[0]) == set(items[(users == u) & (ts >= cut)])
    for r, u in enumerate(sp.validation.users):
        assert np.array_equal(sp.validation.inputs([r])[0], items[(users == u) & (ts < vcut)])
        assert set(sp.validation.targets([r])[0]) <= set(items[(users == u) & (ts >= vcut) & (ts < cut)])


def test_splits_describe_their_protocol_and_settings_for_the_leak_check():
    log = _log(2)
    assert leave_one_out(log, min_events=4).describe() == {"protocol": "leave-one-out", "min_events": 4}
    sp = temporal_split(log, test_cutoff=700, validation_cutoff=500)
    assert sp.describe() == {
        "protocol": "global-temporal",
        "test_cutoff": 700,
        "validation_cutoff": 500,
        "first_only": False,
    }
    assert temporal_split(log, test_cutoff=700).describe()["validation_cutoff"] == 700


def test_session_split_holds_out_the_end_of_each_users_last_session():
    import pandas as pd

    from chronorec.data.eventlog import EventLog
    from chronorec.errors import ConfigError
    from chronorec.evaluation.split import session_split

    rows = [  # u1: an old session, then a 3-event session; u2: last session of one event; u3: of two
        ("u1", "a", 1, "s1"), ("u1", "b", 2, "s1"), ("u1", "c", 10, "s2"), ("u1", "d", 11, "s2"), ("u1", "e", 12, "s2"),
        ("u2", "a", 1, "s3"), ("u2", "b", 2, "s3"), ("u2", "c", 3, "s3"), ("u2", "d", 20, "s4"),
        ("u3", "a", 1, "s5"), ("u3", "b", 2, "s5"), ("u3", "c", 30, "s6"), ("u3", "d", 31, "s6"),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "session"])
    log = EventLog.from_frame(frame, context_columns=["session"])
    sp = session_split(log)
    ext = log.items.to_external
    assert log.users.to_external(sp.test.users).tolist() == ["u1"]  # only u1's last session has 3 events
    assert ext(sp.test.targets(slice(None))[0]).tolist() == ["e"]
    assert ext(sp.test.inputs(slice(None))[0]).tolist() == ["a", "b", "c", "d"]  # earlier session + session so far
    assert ext(sp.validation.targets(slice(None))[0]).tolist() == ["d"]
    assert sp.describe()["users_with_short_last_session"] == 2
    assert sp.describe()["users_with_one_event_last_session"] == 1
    assert len(sp.train) == len(log) - 2  # u2 and u3 stay whole in training
    with pytest.raises(ConfigError, match="--session-col"):
        session_split(EventLog.from_frame(frame.drop(columns="session")))
