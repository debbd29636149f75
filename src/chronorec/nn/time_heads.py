"""Heads that predict *when*: a log-normal mixture over the time to an event, per mark, with censoring.

:class:`LogNormalMixtureHead` is the intensity-free model of Shchur, Bilos and Guennemann (ICLR 2020,
"Intensity-Free Learning of Temporal Point Processes"): from a hidden state it gives, for each of
``n_marks`` event kinds (e.g. behaviour types), a mixture of ``n_components`` log-normals over the time
until the next event of that kind. Because the distribution is explicit, one fitted head answers
every horizon: ``P(T_b <= H)`` is its CDF (monotone in ``H`` by construction), the expected time has a
closed form and quantiles come from bisection on the CDF.

Times are in any positive unit (the caller's: seconds, hours); the head standardises ``log t`` with
``loc`` and ``scale`` set from the training times (:meth:`set_time_scale`), so a model fitted on
hourly gaps and one on daily gaps start alike. A case whose event did not happen by the end of the
observed window is *right-censored* at ``c``: its likelihood is ``S(c) = 1 - F(c)``
(:meth:`nll` with ``observed=False``), which is what lets a log with a finite end be used without
pretending that absent events never happen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LogNormalMixtureHead", "MixtureParams"]

_SQRT2 = math.sqrt(2.0)
MIN_TIME = 1e-6  # times are clamped here before the logarithm (an event at the cut-off itself)


class MixtureParams:
    """The mixture of one batch: ``log_w``, ``mu``, ``sigma`` of shape (batch, marks, components), in
    standardised log-time (``z = (log t - loc) / scale``)."""

    def __init__(self, log_w: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, loc: float, scale: float):
        self.log_w, self.mu, self.sigma, self.loc, self.scale = log_w, mu, sigma, loc, scale

    def _z(self, t: torch.Tensor) -> torch.Tensor:
        return (torch.log(t.clamp_min(MIN_TIME)) - self.loc) / self.scale

    def log_prob(self, t: torch.Tensor) -> torch.Tensor:
        """log density of the time ``t`` (batch, marks) under each mark's mixture (per unit of ``t``)."""
        z = self._z(t).unsqueeze(-1)
        comp = -0.5 * ((z - self.mu) / self.sigma) ** 2 - torch.log(self.sigma) - 0.5 * math.log(2 * math.pi)
        log_pz = torch.logsumexp(self.log_w + comp, -1)
        # change of variables: z = (log t - loc) / scale, so dz/dt = 1 / (t scale)
        return log_pz - torch.log(t.clamp_min(MIN_TIME)) - math.log(self.scale)

    def log_survival(self, t: torch.Tensor) -> torch.Tensor:
        """log P(T > t) (batch, marks)."""
        z = self._z(t).unsqueeze(-1)
        upper = torch.special.log_ndtr(-(z - self.mu) / self.sigma)
        return torch.logsumexp(self.log_w + upper, -1)

    def cdf(self, t: torch.Tensor) -> torch.Tensor:
        """P(T <= t): ``t`` of shape (batch, marks) or (batch, marks, n) for n horizons at once."""
        extra = t.dim() == self.mu.dim()
        z = self._z(t).unsqueeze(-1)  # (..., [n,] 1)
        mu, sigma, w = self.mu, self.sigma, self.log_w.exp()
        if extra:
            mu, sigma, w = mu.unsqueeze(-2), sigma.unsqueeze(-2), w.unsqueeze(-2)
        return (w * torch.special.ndtr((z - mu) / sigma)).sum(-1).clamp(0.0, 1.0)

    def mean(self) -> torch.Tensor:
        """E[T] (batch, marks): ``sum_k w_k exp(loc + scale mu_k + (scale sigma_k)^2 / 2)``."""
        m = self.loc + self.scale * self.mu + 0.5 * (self.scale * self.sigma) ** 2
        return torch.logsumexp(self.log_w + m, -1).exp()

    def quantile(self, q: float, iters: int = 60) -> torch.Tensor:
        """The time ``t`` with ``P(T <= t) = q`` (batch, marks), by bisection on log time."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"a quantile level is between 0 and 1, not {q}")
        lo = torch.full_like(self.mu[..., 0], self.loc - 12.0 * self.scale)
        hi = torch.full_like(lo, self.loc + 12.0 * self.scale)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid.exp()) < q
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return (0.5 * (lo + hi)).exp()


class LogNormalMixtureHead(nn.Module):
    """Hidden state (batch, d_model) -> per-mark log-normal mixtures over the time to the next event."""

    def __init__(self, d_model: int, n_marks: int = 1, n_components: int = 8, min_sigma: float = 0.05):
        super().__init__()
        if n_marks < 1 or n_components < 1:
            raise ValueError("a mixture head needs at least one mark and one component")
        self.n_marks, self.n_components, self.min_sigma = int(n_marks), int(n_components), float(min_sigma)
        self.proj = nn.Linear(d_model, 3 * self.n_marks * self.n_components)
        self.register_buffer("time_loc", torch.tensor(0.0))
        self.register_buffer("time_scale", torch.tensor(1.0))

    def set_time_scale(self, times: torch.Tensor) -> None:
        """Standardise log time with the mean and standard deviation of ``log times`` (training times)."""
        lt = torch.log(torch.as_tensor(times, dtype=torch.float32).clamp_min(MIN_TIME))
        self.time_loc.fill_(float(lt.mean()))
        self.time_scale.fill_(max(float(lt.std()), 1e-3) if lt.numel() > 1 else 1.0)

    def forward(self, h: torch.Tensor) -> MixtureParams:
        p = self.proj(h).view(*h.shape[:-1], self.n_marks, 3, self.n_components)
        log_w = F.log_softmax(p[..., 0, :], -1)
        mu = p[..., 1, :]
        sigma = F.softplus(p[..., 2, :]) + self.min_sigma
        return MixtureParams(log_w, mu, sigma, float(self.time_loc), float(self.time_scale))

    @staticmethod
    def nll(params: MixtureParams, t: torch.Tensor, observed: torch.Tensor, weight: torch.Tensor | None = None):
        """Mean negative log-likelihood of times ``t`` (batch, marks): ``-log f(t)`` where the event was
        ``observed``, ``-log S(t)`` where it was censored at ``t``; ``weight`` (batch, marks) masks cases."""
        ll = torch.where(observed, params.log_prob(t), params.log_survival(t))
        w = torch.ones_like(ll) if weight is None else weight.to(ll.dtype)
        return -(ll * w).sum() / w.sum().clamp_min(1.0)
