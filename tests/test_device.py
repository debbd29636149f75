"""Device placement: the CPU path everywhere, and the GPU path (bf16/fp16 autocast, torch.compile)
where torch sees a CUDA GPU (skipped otherwise; CI has none)."""

import numpy as np
import pytest
import torch

from chronorec import load
from chronorec.datasets.synthetic import make_sequences
from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.evaluation.split import leave_one_out
from chronorec.models import registry
from chronorec.training.runtime import resolve_device, to_device

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def planted():
    return leave_one_out(make_sequences(n_users=400, n_items=120, seed=0, mean_length=25))


def _ndcg(model, sp):
    return evaluate_ranking(model.score, sp.test, n_items=sp.train.n_items, ks=(10,))["NDCG@10"]


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_to_device_moves_nested_tensors_and_keeps_the_rest():
    batch = {"items": torch.ones(2, 3), "feats": {"hour": torch.zeros(2, 3)}, "pair": (torch.ones(1), 5), "x": None}
    moved = to_device(batch, torch.device("cpu"))
    assert torch.equal(moved["items"], batch["items"]) and moved["pair"][1] == 5 and moved["x"] is None
    assert isinstance(moved["pair"], tuple) and torch.equal(moved["feats"]["hour"], batch["feats"]["hour"])


def test_float16_autocast_is_refused_on_cpu(planted):
    model = registry.get("sasrec")(epochs=1, dim=16, max_len=10, progress=False, device="cpu", amp=True)
    model.config.amp_dtype = "float16"
    with pytest.raises(ValueError, match="float16"):
        model.fit(planted.train)


CASES = [
    ("sasrec", {"amp": True}),
    ("sasrec", {"amp": True, "amp_dtype": "float16", "loss": "sampled", "n_negatives": 50}),
    ("bert4rec", {"amp": True, "mask_prob": 0.3}),
    ("hstu", {"amp": True, "loss": "sampled", "n_negatives": 50}),
    ("gru4rec", {}),
]


@pytest.mark.parametrize(
    "device,kind,extra",
    [pytest.param("cuda", k, e, marks=gpu) for k, e in CASES]
    + [pytest.param("cuda", "sasrec", {"amp": True, "compile": True}, marks=gpu)]
    + [("cpu", k, e) for k, e in CASES if e.get("amp_dtype") != "float16" and k in ("hstu", "gru4rec")],
)
def test_models_learn_on_the_device_and_reload_on_the_cpu(planted, tmp_path, device, kind, extra):
    sp = planted
    pop = _ndcg(registry.get("popular")().fit(sp.train), sp)
    common = {"epochs": 8, "dim": 32, "max_len": 20, "lr": 5e-3, "batch_size": 64, "patience": 5, "seed": 1}
    model = registry.get(kind)(progress=False, device=device, **common, **extra)
    model.fit(sp.train, validation=sp.validation)
    assert next(model.module.parameters()).device.type == device
    ndcg = _ndcg(model, sp)
    assert ndcg > 3 * pop and ndcg - pop > 0.15, (kind, extra, ndcg, pop)
    model.save(tmp_path / "m")
    cpu = load(tmp_path / "m", device="cpu")
    assert not next(cpu.module.parameters()).is_cuda
    users = np.arange(1, 40)
    a = model.score(users, [model.store.user_items(int(u)) for u in users])
    b = cpu.score(users, [cpu.store.user_items(int(u)) for u in users])
    assert torch.allclose(a, b, atol=1e-3, rtol=1e-3), (a - b).abs().max()
