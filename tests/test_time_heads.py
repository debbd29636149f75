"""The log-normal mixture head learns planted time-to-event distributions, with and without censoring."""

from __future__ import annotations

import math

import torch

from chronorec.nn.time_heads import LogNormalMixtureHead


def _fit(x, t, observed, marks=1, steps=400):
    torch.manual_seed(0)
    head = LogNormalMixtureHead(x.shape[1], n_marks=marks, n_components=4)
    head.set_time_scale(t[observed])
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = head.nll(head(x), t, observed)
        loss.backward()
        opt.step()
    return head


def test_learns_covariate_dependent_median_under_censoring():
    g = torch.Generator().manual_seed(1)
    n = 4000
    group = torch.randint(0, 2, (n,), generator=g)
    x = torch.nn.functional.one_hot(group, 2).float()
    # group 0: median 2 h, group 1: median 48 h (log-normal, sigma 0.8)
    med = torch.where(group == 0, torch.tensor(2.0), torch.tensor(48.0))
    true_t = med * torch.exp(0.8 * torch.randn(n, generator=g))
    censor = torch.full((n,), 72.0)  # the log ends 72 h after each cut-off
    observed = (true_t <= censor).unsqueeze(1)
    t = torch.minimum(true_t, censor).unsqueeze(1)
    head = _fit(x, t, observed)
    with torch.no_grad():
        p = head(torch.eye(2))
        q50 = p.quantile(0.5).squeeze(1)
        # the estimated medians sit near the planted ones although 31 % of group 1 is censored
        assert abs(math.log(q50[0] / 2.0)) < 0.15
        assert abs(math.log(q50[1] / 48.0)) < 0.15
        # P(T <= 24 h) against the planted truth: Phi(log(24 / median) / 0.8)
        truth = torch.special.ndtr(torch.log(24.0 / torch.tensor([2.0, 48.0])) / 0.8)
        assert torch.allclose(p.cdf(torch.full((2, 1), 24.0)).squeeze(1), truth, atol=0.03)
    # a model that ignores censoring (treats censored times as events) gets group 1 wrong
    naive = _fit(x, t, torch.ones_like(observed))
    with torch.no_grad():
        # the 90th percentile of group 1 lies beyond the end of the log (48 exp(0.8 x 1.28) = 134 h):
        # the censored likelihood extrapolates to it, a naive fit stops near the 72 h end
        q90_true = 48.0 * math.exp(0.8 * 1.2816)
        assert abs(math.log(float(head(torch.eye(2)).quantile(0.9)[1, 0]) / q90_true)) < 0.2
        assert naive(torch.eye(2)).quantile(0.9)[1, 0] < 0.7 * q90_true


def test_cdf_monotone_quantile_inverse_and_mean_closed_form():
    torch.manual_seed(3)
    head = LogNormalMixtureHead(5, n_marks=3, n_components=6)
    head.set_time_scale(torch.rand(100) * 100 + 0.1)
    with torch.no_grad():
        p = head(torch.randn(7, 5))
    hs = torch.logspace(-3, 4, 200).expand(7, 3, 200)
    c = p.cdf(hs)
    assert c.shape == (7, 3, 200)
    assert torch.all(c[..., 1:] >= c[..., :-1] - 1e-7)
    q = p.quantile(0.3)
    assert torch.allclose(p.cdf(q), torch.full_like(q, 0.3), atol=1e-4)
    # the closed-form mean against Monte Carlo draws of one case
    w, mu, sd = p.log_w[0, 0].exp(), p.mu[0, 0], p.sigma[0, 0]
    k = torch.multinomial(w, 200_000, replacement=True)
    draws = torch.exp(p.loc + p.scale * (mu[k] + sd[k] * torch.randn(200_000)))
    assert abs(float(draws.mean() / p.mean()[0, 0]) - 1) < 0.05
    # survival and cdf agree
    t = torch.full((7, 3), 5.0)
    assert torch.allclose(p.log_survival(t).exp(), 1 - p.cdf(t), atol=1e-5)
