"""The use cases the commands call (chronorec.workflows.run), called directly as a library."""

from __future__ import annotations

import pytest

from chronorec.workflows import run
from chronorec.workflows.run_config import parse_config


def _cfg(tmp_path, **extra):
    return parse_config({"data": {"dataset": "synthetic"}, "output_dir": str(tmp_path), "seed": 3, **extra})


def test_one_resolver_gives_the_same_named_data_as_an_event_log_and_as_a_frame():
    log = run.resolve_dataset("synthetic", seed=1)
    frame = run.resolve_dataset("synthetic", seed=1, frame=True)
    assert len(log) > 0 and {"user_id", "item_id", "timestamp"} <= set(frame.columns)
    with pytest.raises(Exception, match="unknown dataset"):
        run.resolve_dataset("no-such-set")


def test_load_events_and_make_split_take_a_whole_config_or_its_section(tmp_path):
    cfg = _cfg(tmp_path, split={"protocol": "loo", "min_events": 4})
    log = run.load_events(cfg)
    assert len(log) == len(run.load_events(cfg))  # the config's seed draws the same synthetic log
    whole, section = run.make_split(log, cfg), run.make_split(log, cfg.split)
    assert whole.protocol == section.protocol and len(whole.test) == len(section.test)
    assert run.data_label(cfg) == "dataset:synthetic"


def test_model_entry_merges_the_config_entry_then_params_then_run_settings(tmp_path):
    cfg = _cfg(tmp_path, models=[{"kind": "sasrec", "name": "s", "dim": 32, "epochs": 5}])
    entry = run.model_entry(cfg, None, None, ["dim=48"], {"epochs": 2, "seed": 3})  # --seed given: the config seed
    assert (entry.kind, entry.label) == ("sasrec", "s")
    assert entry.params()["dim"] == 48 and entry.params()["epochs"] == 2 and entry.params()["seed"] == 3
    with pytest.raises(Exception, match="expected key=value"):
        run.model_entry(cfg, None, None, ["dim"])
    with pytest.raises(Exception, match="does not apply"):
        run.model_entry(cfg, "popular", None, None, {"epochs": 2})


def test_train_then_evaluate_return_the_model_the_folder_and_the_lines_to_print(tmp_path):
    cfg = _cfg(tmp_path)
    started: list[str] = []
    result = run.train(cfg, kind="popular", out=tmp_path / "pop", on_start=started.append)
    assert result.saved and result.target == tmp_path / "pop" and (tmp_path / "pop").is_dir()
    assert result.model.items is not None and started[0].startswith("Training ")
    assert (
        result.lines[0].startswith("Trained popular (leave-one-out: ")
        and result.lines[-1] == f"Saved the model to {tmp_path / 'pop'}/"
    )

    cfg = _cfg(tmp_path, evaluation={"model_dirs": [str(tmp_path / "pop")]})
    ev = run.evaluate(cfg, out=tmp_path / "e.json")
    assert ev.target.exists() and "pop" in ev.payload["results"]  # labelled by folder name
    assert ev.lines[-1] == (f"Saved the results to {tmp_path / 'e.json'}", False)
