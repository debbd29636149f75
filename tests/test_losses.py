import pytest
import torch

from chronorec.models.sequential.losses import full_softmax_ce, full_softmax_ce_reference, sampled_softmax_ce


def _data(n=37, d=8, v=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g, requires_grad=True)
    w = torch.randn(v + 1, d, generator=g, requires_grad=True)
    t = torch.randint(1, v + 1, (n,), generator=g)
    return h, w, t


def test_chunked_full_softmax_matches_reference_loss_and_gradients():
    h, w, t = _data()
    ref = full_softmax_ce_reference(h, t, w)
    gh, gw = torch.autograd.grad(ref, (h, w))
    fast = full_softmax_ce(h, t, w, chunk=5)  # several chunks, last one partial
    fh, fw = torch.autograd.grad(fast, (h, w))
    assert fast.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(fh, gh, atol=1e-6) and torch.allclose(fw, gw, atol=1e-6)
    assert fw[0].abs().max() == 0  # the padding row gets no gradient


def test_chunked_full_softmax_bfloat16_is_close():
    h, w, t = _data(seed=1)
    ref = full_softmax_ce_reference(h, t, w)
    fast = full_softmax_ce(h, t, w, chunk=16, dtype=torch.bfloat16)
    assert fast.item() == pytest.approx(ref.item(), rel=2e-2)


def test_sampled_softmax_with_all_items_equals_full_softmax():
    # uniform sampling with n_negatives >> catalogue covers every item; duplicates of a negative
    # add log(count) to its logit, so use exactly one copy of each item as the negatives instead
    h, w, t = _data(v=20)
    full = full_softmax_ce_reference(h, t, w)
    neg = torch.arange(1, 21)
    logits_pos = (h * w[t]).sum(-1, keepdim=True)
    logits_neg = (h @ w[neg].t()).masked_fill(neg[None] == t[:, None], -torch.inf)
    manual = torch.nn.functional.cross_entropy(
        torch.cat([logits_pos, logits_neg], 1), torch.zeros(len(t), dtype=torch.long)
    )
    assert manual.item() == pytest.approx(full.item(), rel=1e-5)
    sampled = sampled_softmax_ce(h, t, w, n_negatives=5, generator=torch.Generator().manual_seed(0))
    assert 0 < sampled.item() < full.item()  # fewer competitors -> smaller loss


def test_fused_loss_bfloat16_values_and_gradients_match_the_autocast_reference():
    # the reference rounds the logits to bfloat16 as autocast does; the fused loss must agree with
    # it in value and gradients whatever the chunking (one chunk, several, a partial last one)
    h, w, t = _data(n=300, d=16, v=400, seed=2)
    logits = (h.bfloat16() @ w.bfloat16().t()).float()
    logits[:, 0] = -torch.inf
    ref = torch.nn.functional.cross_entropy(logits, t)
    gh, gw = torch.autograd.grad(ref, (h, w))
    for chunk in (7, 128, 1000):
        fast = full_softmax_ce(h, t, w, chunk=chunk, dtype=torch.bfloat16)
        fh, fw = torch.autograd.grad(fast, (h, w))
        assert fast.item() == pytest.approx(ref.item(), rel=1e-4)
        assert (fh - gh).norm() / gh.norm() < 1e-2 and (fw - gw).norm() / gw.norm() < 1e-2
        assert fh.dtype == h.dtype and fw.dtype == w.dtype and fw[0].abs().max() == 0


def test_fused_loss_under_autocast_keeps_the_input_dtypes():
    h, w, t = _data(n=64, d=8, v=30, seed=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = full_softmax_ce(h, t, w, chunk=10, dtype=torch.bfloat16)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert h.grad.dtype == torch.float32 and w.grad.dtype == torch.float32
    ref = full_softmax_ce_reference(h.detach(), t, w.detach())
    assert loss.item() == pytest.approx(ref.item(), rel=2e-2)


@pytest.mark.parametrize("budget", [0, 2**30])
def test_fused_loss_both_paths_match_the_reference(monkeypatch, budget):
    # budget 0: log-sum-exp kept, each chunk's softmax recomputed; 2**30: the probabilities kept
    from chronorec.models.sequential import losses

    monkeypatch.setattr(losses, "PROBS_BUDGET_BYTES", budget)
    h, w, t = _data(n=90, d=8, v=60, seed=4)
    ref = full_softmax_ce_reference(h, t, w)
    gh, gw = torch.autograd.grad(ref, (h, w))
    fast = full_softmax_ce(h, t, w, chunk=32)
    fh, fw = torch.autograd.grad(fast, (h, w), retain_graph=True)
    assert fast.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(fh, gh, atol=1e-6) and torch.allclose(fw, gw, atol=1e-6)
    again = torch.autograd.grad(fast, (h, w))  # a second backward gives the same gradients
    assert torch.allclose(again[0], fh, atol=1e-6) and torch.allclose(again[1], fw, atol=1e-6)


@pytest.mark.parametrize("chunk", [3, None])
def test_fresh_kernel_equals_the_fused_one(chunk):
    torch.manual_seed(0)
    h = torch.randn(10, 8, requires_grad=True)
    w = torch.randn(21, 8, requires_grad=True)
    y = torch.randint(1, 21, (10,))
    grads = []
    for kernel in ("fused", "fresh"):
        loss = full_softmax_ce(h, y, w, chunk=chunk, kernel=kernel)
        grads.append((loss.detach(), *torch.autograd.grad(loss, (h, w))))
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="kernel"):
        full_softmax_ce(h, y, w, kernel="other")
