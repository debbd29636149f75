import pytest

from chronorec.workflows.run_config import ConfigError, SplitConfig, load_config, merge, parse_config

YAML = """
data:
  path: events.csv
  user_col: uid
  context_cols: [device]
split:
  protocol: temporal
  cutoff: "2024-03-01"
models:
  - kind: popular
  - kind: gru4rec
    name: lstm
    cell: lstm
    epochs: 3
  - kind: sasrec
    layers: 1
evaluation:
  ks: [20, 10, 10]
output_dir: runs/x
seed: 7
threads: 2
"""

TOML = """
seed = 3

[data]
dataset = "synthetic"

[[models]]
kind = "ease"

[[models]]
kind = "sasrec"
dim = 32
"""


def test_yaml_loads_and_union_picks_model_configs(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(YAML)
    cfg = load_config(p)
    assert cfg.data.path == "events.csv" and cfg.data.user_col == "uid" and cfg.data.context_cols == ["device"]
    assert cfg.split.protocol == "temporal"
    assert SplitConfig.to_seconds(cfg.split.cutoff) == 1709251200
    assert cfg.evaluation.ks == [10, 20]
    assert (cfg.seed, cfg.threads, cfg.output_dir) == (7, 2, "runs/x")
    from chronorec.models import registry

    kinds = [m.kind for m in cfg.models]
    assert kinds == ["popular", "gru4rec", "sasrec"]
    for m in cfg.models:
        assert isinstance(m, registry.get(m.kind).Config)
    assert [m.label for m in cfg.models] == ["popular", "lstm", "sasrec"]
    lstm = cfg.models[1].params()
    assert lstm["cell"] == "lstm" and lstm["epochs"] == 3 and "name" not in lstm and "kind" not in lstm
    assert cfg.models[2].params()["layers"] == 1
    model = registry.get("gru4rec")(**lstm)
    assert model.config.cell == "lstm"


def test_toml_loads(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text(TOML)
    cfg = load_config(p)
    assert cfg.seed == 3 and cfg.data.dataset == "synthetic"
    assert [m.kind for m in cfg.models] == ["ease", "sasrec"]
    assert cfg.models[1].dim == 32
    assert cfg.split.protocol == "loo" and cfg.evaluation.ks == [5, 10, 20]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"modelz": []}, "modelz"),
        ({"data": {"path": "x.csv", "usr_col": "u"}}, "data.usr_col"),
        ({"models": [{"kind": "sasrec", "dimm": 3}]}, "models.0.sasrec.dimm"),
        ({"models": [{"kind": "gru4rec", "cell": "rnn"}]}, "models.0.gru4rec.cell"),
        ({"evaluation": {"ks": [0]}}, "evaluation.ks.0"),
    ],
)
def test_unknown_or_bad_key_is_named(data, key):
    with pytest.raises(ConfigError) as e:
        parse_config(data, source="run.yaml")
    msg = str(e.value)
    assert msg.startswith("run.yaml: invalid configuration")
    assert f"  {key}:" in msg


def test_unknown_kind_and_missing_kind(tmp_path):
    with pytest.raises(ConfigError, match=r"models\.0: unknown model kind 'bert'"):
        parse_config({"models": [{"kind": "bert"}]})
    with pytest.raises(ConfigError, match=r"models\.0: each model entry needs a 'kind'"):
        parse_config({"models": [{"dim": 3}]})
    with pytest.raises(ConfigError, match="duplicate names"):
        parse_config({"models": [{"kind": "sasrec"}, {"kind": "sasrec"}]})
    with pytest.raises(ConfigError, match="split.cutoff is required"):
        parse_config({"split": {"protocol": "temporal"}})


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: cannot parse"):
        load_config(bad)
    unknown = tmp_path / "run.ini"
    unknown.write_text("x")
    with pytest.raises(ConfigError, match="unknown config format '.ini'"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    extra = tmp_path / "extra.toml"
    extra.write_text("[data]\npath = 'a.csv'\ncolour = 'red'\n")
    with pytest.raises(
        ConfigError, match=r"extra.toml: invalid configuration \(1 error\):\n  data.colour: Extra inputs"
    ):
        load_config(extra)


def test_merge_overrides_and_ignores_none():
    base = {"data": {"path": "a.csv", "user_col": "u"}, "seed": 1}
    out = merge(
        base, {"data": {"user_col": None, "item_col": "i"}, "seed": 2, "threads": None, "split": {"cutoff": None}}
    )
    assert out == {"data": {"path": "a.csv", "user_col": "u", "item_col": "i"}, "seed": 2, "split": {}}
    assert base["seed"] == 1
