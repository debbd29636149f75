"""The attention blocks: scaled_dot_product_attention with the precomputed additive mask equals the
written-out attention (causal, padding), the last-position path equals the full one, and a causal
encoder gives the same hidden states for rows padded on the right (no mask, is_causal) as on the left."""

import pytest
import torch

from chronorec.nn import blocks
from chronorec.nn.blocks import (
    SelfAttention,
    TransformerBlock,
    additive_mask,
    causal_padding_mask,
    padding_mask,
    reference_attention,
)


def _items():
    # left-padded rows: a full row, a short one and one with a single item
    return torch.tensor([[3, 1, 4, 1, 5, 9], [0, 0, 2, 6, 5, 3], [0, 0, 0, 0, 0, 7]])


@pytest.mark.parametrize("make_mask", [causal_padding_mask, padding_mask])
def test_sdpa_with_additive_mask_equals_the_written_out_attention(make_mask):
    torch.manual_seed(0)
    items = _items()
    q, k, v = (torch.randn(3, 2, 6, 4) for _ in range(3))
    mask = make_mask(items)
    ref = reference_attention(q, k, v, mask)
    fast = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask(mask))
    real = (items > 0)[:, None, :, None]  # padded query rows are never used
    assert torch.allclose(torch.where(real, fast, 0), torch.where(real, ref, 0), atol=1e-5)
    # causal: changing a later item leaves earlier outputs alone; padding keys are ignored
    if make_mask is causal_padding_mask:
        k2, v2 = k.clone(), v.clone()
        k2[..., 4:, :] += 5.0
        v2[..., 4:, :] -= 3.0
        later = torch.nn.functional.scaled_dot_product_attention(q, k2, v2, attn_mask=additive_mask(mask))
        assert torch.allclose(later[..., :4, :][real[..., :4, :].expand(-1, 2, -1, 4)],
                              fast[..., :4, :][real[..., :4, :].expand(-1, 2, -1, 4)], atol=1e-5)  # fmt: skip
    k3 = k.clone()
    k3[1, :, :2] += 7.0  # row 1's padding keys
    moved = torch.nn.functional.scaled_dot_product_attention(q, k3, v, attn_mask=additive_mask(mask))
    assert torch.allclose(moved[1, :, 2:], fast[1, :, 2:], atol=1e-5)


def test_attention_module_sdpa_equals_manual_and_one_query_equals_full():
    torch.manual_seed(1)
    items = _items()
    mask = additive_mask(causal_padding_mask(items))
    attn = SelfAttention(8, 2).eval()
    x = torch.randn(3, 6, 8)
    fast = attn(x, mask)
    blocks.set_attention(attn, "manual")
    manual = attn(x, mask)
    assert torch.allclose(fast[:, 2:], manual[:, 2:], atol=1e-5) and torch.allclose(fast[0], manual[0], atol=1e-5)
    blocks.set_attention(attn, "sdpa")
    block = TransformerBlock(8, 2, dropout=0.0).eval()
    full = block(x, mask)
    query = torch.tensor([5, 5, 5])
    last = block(x, mask[torch.arange(3), :, query][:, :, None], query)
    assert last.shape == (3, 1, 8) and torch.allclose(last, full[:, -1:], atol=1e-5)


def test_attention_gradients_match_the_manual_path():
    torch.manual_seed(2)
    items = _items()
    mask = additive_mask(causal_padding_mask(items))
    attn = SelfAttention(8, 2)
    x = torch.randn(3, 6, 8, requires_grad=True)
    real = (items > 0)[..., None]
    (g_fast,) = torch.autograd.grad((attn(x, mask) * real).square().sum(), x)
    blocks.set_attention(attn, "manual")
    (g_manual,) = torch.autograd.grad((attn(x, mask) * real).square().sum(), x)
    assert torch.allclose(g_fast, g_manual, atol=1e-4)


@pytest.mark.parametrize("causal", [True, False])
def test_encoder_right_padding_equals_left_padding(causal):
    from chronorec.models.sequential.windows import pad_right
    from chronorec.nn.blocks import SequenceEncoder

    torch.manual_seed(3)
    enc = SequenceEncoder(12, 8, 6, 0.0, [TransformerBlock(8, 2, 0.0) for _ in range(2)]).eval()
    enc.causal = causal
    left = _items()
    lengths = (left > 0).sum(1).numpy()
    right = torch.from_numpy(pad_right(left.numpy(), lengths))
    assert right[1].tolist() == [2, 6, 5, 3, 0, 0]
    with torch.no_grad():
        h_left, h_right = enc(left), enc(right)
        last_left, last_right = enc(left, last_only=True), enc(right, last_only=True)
    assert enc.masks(right > 0) is None if causal else enc.masks(right > 0) is not None
    for r, n in enumerate(lengths):
        assert torch.allclose(h_left[r, 6 - n :], h_right[r, :n], atol=1e-5)
        assert torch.allclose(last_left[r, 0], h_left[r, -1], atol=1e-5)
        assert torch.allclose(last_right[r, 0], h_right[r, n - 1], atol=1e-5)


def test_attention_fields_of_the_config_reach_every_layer():
    from chronorec.datasets.synthetic import make_sequences
    from chronorec.models.sequential.sasrec import SASRec

    log = make_sequences(n_users=20, n_items=15, mean_length=6, seed=0)
    model = SASRec(attention="manual", scoring_attention_fp32=True, epochs=1, dim=8, max_len=6, progress=False,
                   device="cpu").fit(log)  # fmt: skip
    layers = [m for m in model.module.modules() if isinstance(m, SelfAttention)]
    assert layers and all(m.impl == "manual" and m.scoring_fp32 for m in layers)
    with pytest.raises(ValueError, match="attention"):
        blocks.set_attention(model.module, "flash")
