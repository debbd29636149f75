"""Models declare what the layers above ask of them (chronorec.models.protocol): no caller outside
chronorec.models probes a model with getattr, and every registered kind answers every capability
once fitted."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from chronorec.datasets.synthetic import make_sequences
from chronorec.evaluation.split import leave_one_out
from chronorec.models import registry
from chronorec.models.base import Recommender
from chronorec.models.protocol import PROTOCOLS

SRC = Path(__file__).resolve().parents[1] / "src" / "chronorec"
MODEL_NAMES = {"m", "member", "members", "base", "ens", "ensemble", "recommender"}
ALLOWED: set[tuple[str, str]] = set()


def _model_probes(root: Path) -> list[tuple[str, int, str]]:
    """``(path, line, first argument)`` of each getattr(...) outside models/ whose first argument
    looks like a model: its source names "model", or it is one of :data:`MODEL_NAMES`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("models/"):
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"):
                continue
            if not node.args:
                continue
            arg = ast.get_source_segment(text, node.args[0]) or ""
            last = arg.rsplit(".", 1)[-1]
            if "model" in arg.lower() or last in MODEL_NAMES:
                if (rel, arg) not in ALLOWED:
                    found.append((rel, node.lineno, arg))
    return found


def test_no_getattr_probe_of_a_model_outside_models():
    assert _model_probes(SRC) == []


def test_the_probe_check_finds_a_planted_probe(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "ok.py").write_text("x = getattr(model, 'config', None)\n")
    (tmp_path / "serve.py").write_text(
        "a = getattr(self.model, 'query_cache', None)\n"
        "b = getattr(getattr(pipeline.model, 'config', None), 'max_len', None)\n"
        "c = [getattr(m, 'training_data', {}) for m in members]\n"
        "d = getattr(settings, 'max_batch', 64)\n"
    )
    found = _model_probes(tmp_path)
    assert [(p, line) for p, line, _ in found] == [("serve.py", 1), ("serve.py", 2), ("serve.py", 2), ("serve.py", 3)]


SMALL = {"epochs": 1, "dim": 8, "max_len": 10, "progress": False}
PARAMS = {
    "itemknn": {"neighbours": 10},
    "ease": {"l2": 50.0},
    "gru4rec": {**SMALL, "hidden": 8},
    "sasrec": SMALL,
    "bert4rec": SMALL,
    "hstu": SMALL,
    "repeatnet": SMALL,
    "contentrec": {**SMALL, "encoder": "hashing", "content_dim": 16},
    "tifuknn": {"neighbours": 5, "group_size": 3},
    "ensemble": {"members": [{"kind": "popular"}, {"kind": "sasrec", **SMALL}]},
    "repeat-blend": {"base": {"kind": "itemknn", "neighbours": 10}},
}


@pytest.fixture(scope="module")
def split():
    torch.set_num_threads(1)
    return leave_one_out(make_sequences(n_users=40, n_items=25, seed=5, mean_length=8))


@pytest.mark.parametrize("kind", registry.kinds())
def test_every_kind_answers_the_protocol_once_fitted(split, kind):
    model = registry.get(kind)(**PARAMS.get(kind, {})).fit(split.train, validation=split.validation)
    assert isinstance(model, Recommender)
    for proto in PROTOCOLS:
        assert isinstance(model, proto), (kind, proto.__name__)
    n = model.n_items
    emb = model.item_embeddings()
    assert emb is None or (emb.shape[0] == n + 1 and not emb[0].any())
    assert isinstance(model.request_features, list) and isinstance(model.history_context, bool)
    coded, warnings = model.encode_request_context({"device": "mobile"})
    assert coded is None and warnings  # no kind here was trained with request context
    assert model.encode_request_context(None) == (None, [])
    assert isinstance(model.exclude_history, bool) and model.history_protocol is not None
    history, items = np.array([1, 2, 3], np.int64), np.array([4, 5], np.int64)
    for answer in (model.explain_items(history, items, 2), model.history_reasons(history, items)):
        assert answer is None or len(answer) == len(items)
    described = model.describe_items(items)
    assert described is None or len(described) == len(items)
    assert isinstance(model.enable_query_cache(8), bool)
    assert (model.query_cache is not None) == model.enable_query_cache(8)
    model.enable_query_cache(0)
    assert model.query_cache is None
    width = model.max_history_width
    assert width is None or width >= 1
    members = model.members
    assert isinstance(members, list) and (len(members) == 2 if kind == "ensemble" else members == [])
    assert model.kind == kind and isinstance(model.fit_info, dict) and model.training_data


def test_request_context_is_coded_by_the_model(split):
    """The model's one encoder: a sequence model trained with request context codes the request's own
    context, and names what it ignores (recommend.context only asks it)."""
    from chronorec.recommend.context import request_context

    model = registry.get("sasrec")(**SMALL, use_context=True, request_context=True).fit(split.train)
    assert model.history_context
    assert request_context(model, {"weather": "rain"}) == model.encode_request_context({"weather": "rain"})
    plain = registry.get("sasrec")(**SMALL, use_context=True).fit(split.train)
    assert plain.request_features == []
    _, warnings = plain.encode_request_context({"time": 1})
    assert "past events only" in warnings[0]


def test_a_request_context_time_is_read_as_ingest_reads_times(split):
    """``context.time`` takes what ingest and POST /events take: epoch s / ms / us and ISO 8601 text,
    the same instant coded alike; text that is no time is ignored with the reason."""
    model = registry.get("sasrec")(**SMALL, use_context=True, request_context=True).fit(split.train)
    assert "hour" in model.request_features or "weekday" in model.request_features
    seconds = 1_718_011_800  # 2024-06-10T09:30:00Z
    coded = [
        model.encode_request_context({"time": t})[0]
        for t in (seconds, seconds * 1000, seconds * 1_000_000, "2024-06-10T09:30:00Z", "2024-06-10T11:30:00+02:00")
    ]
    assert coded[0] == {"next": {"timestamp": seconds}} and all(c == coded[0] for c in coded)
    ctx, warnings = model.encode_request_context({"time": "next tuesday"})
    assert ctx is None and "context time='next tuesday' ignored (bad timestamp): send epoch seconds" in warnings[0]
