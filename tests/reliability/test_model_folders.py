"""Hostile model folders: a manifest pointing outside the folder, corrupt or truncated files behind
a matching manifest, a manifest that is not a manifest, a config that contradicts the weights. Each
gets one ModelFolderError naming folder, file and fix (CLI: one line, exit 1, in recommend,
evaluate and serve), and nothing is lost or changed: the tampered folder is left as it was and a
good model elsewhere still loads with identical scores."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from chronorec.errors import ModelFolderError, ModelLoadError
from chronorec.models.registry import load

from ._models import copy, edit_manifest, events_csv, forge, save_popular, save_sasrec, scores, sha256
from .conftest import one_line_error, snapshot


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    sas, pop = save_sasrec(root / "sasrec"), save_popular(root / "popular")
    return {"sasrec": sas, "popular": pop, "scores": scores(sas), "csv": events_csv(root / "events.csv")}


@pytest.fixture()
def bad(good, tmp_path):
    """A fresh copy of the good SASRec folder to tamper with."""
    return copy(good["sasrec"], tmp_path / "model")


def refused(d: Path, message: str, good: dict) -> ModelFolderError:
    """``load(d)`` raises ModelFolderError with ``message``; ``d`` is untouched; the good model is unchanged."""
    before = snapshot(d) if d.is_dir() else None
    with pytest.raises(ModelFolderError, match=message) as e:
        load(d)
    assert "\n" not in str(e.value)
    assert str(d) in str(e.value) or d.name in str(e.value)
    if before is not None:
        assert snapshot(d) == before
    np.testing.assert_array_equal(scores(good["sasrec"]), good["scores"])
    return e.value


# ---------------------------------------------------------------------- entries outside the folder
def test_a_manifest_entry_climbing_out_of_the_folder_is_refused(bad, good):
    (bad / "config.json").unlink()
    target = f"../../{good['popular'].parent.name}/popular/config.json"
    edit_manifest(bad, lambda m: m["files"].__setitem__(target, m["files"].pop("config.json")))
    e = refused(bad, r"refusing manifest entry '\.\./\.\./.*config\.json'.*never a path", good)
    assert "save the model again" in str(e)


def test_an_absolute_manifest_entry_is_refused(bad, good):
    outside = good["popular"] / "config.json"
    edit_manifest(bad, lambda m: m["files"].__setitem__(str(outside), sha256(outside)))
    refused(bad, "refusing manifest entry '/.*never a path", good)


def test_a_manifest_entry_with_a_subfolder_is_refused(bad, good):
    (bad / "sub").mkdir()
    os.replace(bad / "users.parquet", bad / "sub" / "users.parquet")
    edit_manifest(bad, lambda m: m["files"].__setitem__("sub/users.parquet", m["files"].pop("users.parquet")))
    refused(bad, "refusing manifest entry 'sub/users.parquet'", good)


def test_a_symbolic_link_out_of_the_folder_is_refused(bad, good):
    (bad / "config.json").unlink()
    os.symlink(good["sasrec"] / "config.json", bad / "config.json")  # same bytes: the checksum would match
    refused(bad, "config.json: refusing manifest entry 'config.json': it is a symbolic link", good)


def test_a_symbolic_link_as_manifest_is_refused(bad, good):
    (bad / "manifest.json").unlink()
    os.symlink(good["sasrec"] / "manifest.json", bad / "manifest.json")
    refused(bad, "manifest.json: the manifest must be a plain file in the folder", good)


@pytest.fixture()
def ensemble(good, tmp_path):
    from chronorec.models.ensemble import Ensemble

    a, b = load(good["sasrec"]), load(good["sasrec"])
    d = tmp_path / "ens"
    Ensemble.from_models([a, b]).save(d)
    return d


@pytest.mark.parametrize("member", ["../outside", "/tmp", "member_0/../../outside", ".."])
def test_an_ensemble_member_outside_the_folder_is_refused(ensemble, good, member):
    copy(good["sasrec"], ensemble.parent / "outside")
    edit_manifest(ensemble, lambda m: m.__setitem__("members", [member, "member_1"]))
    refused(ensemble, f"refusing ensemble member '{member}'", good)


def test_an_ensemble_member_that_is_a_symbolic_link_is_refused(ensemble, good):
    import shutil

    shutil.rmtree(ensemble / "member_0")
    os.symlink(good["sasrec"], ensemble / "member_0")
    refused(ensemble, "member_0: refusing ensemble member 'member_0': it is a symbolic link", good)


def test_a_good_ensemble_still_loads(ensemble, good):
    assert len(load(ensemble).models) == 2


# ---------------------------------------------------------------------- corrupt files behind a matching manifest
def test_random_bytes_as_weights_are_refused_naming_the_file(bad, good):
    forge(bad, "model.safetensors", os.urandom(2000))
    refused(bad, r"model\.safetensors: corrupt or truncated safetensors file", good)


def test_truncated_weights_are_refused_naming_the_file(bad, good):
    forge(bad, "model.safetensors", (bad / "model.safetensors").read_bytes()[:-100])
    refused(bad, r"model\.safetensors: corrupt or truncated safetensors file \(.*not fully covered", good)


def test_empty_weights_are_refused(bad, good):
    forge(bad, "model.safetensors", b"")
    refused(bad, r"model\.safetensors: corrupt or truncated safetensors file", good)


def test_a_truncated_parquet_id_map_is_refused(bad, good):
    forge(bad, "items.parquet", (bad / "items.parquet").read_bytes()[:40])
    refused(bad, r"items\.parquet: corrupt or truncated Parquet file", good)


def test_weights_without_the_tensors_a_model_needs_are_refused(bad, good):
    from chronorec.artifacts import save_tensors

    save_tensors(bad / "model.safetensors", {"x": np.zeros(3)})
    forge(bad, "model.safetensors", (bad / "model.safetensors").read_bytes())
    refused(bad, r"an entry the model needs is missing from its files: '_store\.offsets'", good)


# ---------------------------------------------------------------------- the manifest itself
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"manifest\.json: the manifest is not valid JSON \(empty, truncated or corrupt"),  # truncated
        ("", r"manifest\.json: the manifest is not valid JSON"),
        ("[1, 2]", r"manifest\.json: the manifest must be a JSON object, not list"),
        ('"text"', r"manifest\.json: the manifest must be a JSON object, not str"),
        ("\udcff", r"manifest\.json: the manifest is not valid JSON"),
    ],
)
def test_a_broken_manifest_is_one_error_naming_it(bad, good, content, message):
    path = bad / "manifest.json"
    if content is None:
        path.write_bytes(path.read_bytes()[:60])
    elif content == "\udcff":
        path.write_bytes(b"\xff\xfe{")
    else:
        path.write_text(content)
    e = refused(bad, message, good)
    assert "save the model again" in str(e)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.__setitem__("files", [1, 2]), "'files' must map file names to SHA-256 digests"),
        (lambda m: m.__setitem__("files", {"config.json": 5}), "'files' must map file names to SHA-256 digests"),
        (lambda m: m.__setitem__("kind", ["sasrec"]), "'kind' must be a model kind name"),
        (lambda m: m.__setitem__("members", "member_0"), "'members' must be a list of sub-folder names"),
        (lambda m: m["files"].pop("model.safetensors"), r"does not list \['model\.safetensors'\]"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused(bad, good, change, message):
    if "pop" in repr(change.__code__.co_names):
        (bad / "model.safetensors").unlink()
    edit_manifest(bad, change)
    refused(bad, message, good)


def test_a_stale_or_planted_model_file_not_in_the_manifest_is_refused(bad, good):
    assert (bad / "item_names.parquet").exists()
    edit_manifest(bad, lambda m: m["files"].pop("item_names.parquet"))  # as if left by an earlier save
    refused(bad, r"\['item_names\.parquet'\] are not in the manifest \(left by another save, or planted\)", good)


# ---------------------------------------------------------------------- files that contradict each other
def _config(d: Path, change) -> None:
    meta = json.loads((d / "config.json").read_text())
    change(meta)
    forge(d, "config.json", json.dumps(meta).encode())


def test_a_config_whose_dim_does_not_fit_the_weights_is_refused(bad, good):
    _config(bad, lambda m: m["config"].__setitem__("dim", 16))
    refused(bad, r"config\.json does not fit the weights in model\.safetensors \(.*size mismatch", good)


def test_a_config_with_an_invalid_value_is_refused(bad, good):
    _config(bad, lambda m: m["config"].__setitem__("dim", -5))
    refused(bad, r"the files do not make a loadable model \(ValidationError: .*dim", good)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "the model configuration is not valid JSON"),
        (b"[]", "the model configuration must be a JSON object, not list"),
    ],
)
def test_a_config_that_is_not_a_json_object_is_refused(bad, good, content, message):
    forge(bad, "config.json", content)
    refused(bad, rf"config\.json: {message}", good)


def test_a_file_changed_behind_the_manifest_is_refused(bad, good):
    (bad / "config.json").write_text((bad / "config.json").read_text().replace('"dim": 8', '"dim": 16'))
    refused(bad, r"config\.json: checksum does not match the manifest", good)


def test_an_unknown_kind_is_a_model_load_error(bad, good):
    edit_manifest(bad, lambda m: m.__setitem__("kind", "nosuchkind"))
    with pytest.raises(ModelLoadError, match="unknown model kind 'nosuchkind'"):
        load(bad)


# ---------------------------------------------------------------------- the commands
@pytest.fixture()
def corrupt(bad):
    forge(bad, "model.safetensors", os.urandom(500))
    return bad


def test_recommend_on_a_corrupt_model_is_one_line_exit_1(cli, corrupt):
    res = cli("recommend", "--model", corrupt, "--users", "1")
    assert res.exit_code == 1
    assert "model.safetensors: corrupt or truncated safetensors file" in one_line_error(res.output)


def test_evaluate_on_a_corrupt_model_is_one_line_exit_1(cli, corrupt, good):
    res = cli("evaluate", corrupt, "--data", good["csv"])
    assert res.exit_code == 1
    assert "model.safetensors: corrupt or truncated safetensors file" in one_line_error(res.output)


def test_serve_on_a_corrupt_model_is_one_line_exit_1_before_serving(cli, corrupt):
    res = cli("serve", "--model", corrupt, "--port", "8765")
    assert res.exit_code == 1
    assert "Serving" not in res.output
    assert "model.safetensors: corrupt or truncated safetensors file" in one_line_error(res.output)


def test_serve_on_a_traversing_manifest_is_one_line_exit_1(cli, bad):
    edit_manifest(bad, lambda m: m["files"].__setitem__("../x/config.json", "0" * 64))
    res = cli("serve", "--model", bad)
    assert res.exit_code == 1
    assert "refusing manifest entry '../x/config.json'" in one_line_error(res.output)


def test_the_service_refuses_a_config_that_does_not_fit(bad):
    from chronorec.serving.app import create_app

    _config(bad, lambda m: m["config"].__setitem__("dim", 16))
    with pytest.raises(ModelFolderError, match="config.json does not fit the weights"):
        create_app(bad, state_dir=bad.parent / "state")
