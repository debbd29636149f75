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
