"""Parzen-window log-likelihood (Goodfellow et al. 2014, after Breuleux et al. 2011).

A Gaussian kernel density with isotropic width σ is fitted to generated samples; the mean
log-likelihood of held-out data under it is reported in nats, on pixels scaled to [0, 1]. σ is
chosen by grid search on the validation split and the score reported on the test split with its
standard error (Goodfellow et al., Table 1: MNIST 225 ± 2). Distances are computed in blocks and
reduced with a log-sum-exp, so memory stays bounded by the block size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

DEFAULT_SIGMAS = tuple(float(s) for s in torch.logspace(math.log10(0.05), 0.0, 20))


def _flat01(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float [N, D] in [0, 1]; floats are taken as already scaled."""
    x = x.reshape(len(x), -1)
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def parzen_log_likelihood(
    samples: torch.Tensor,
    data: torch.Tensor,
    sigmas: Sequence[float],
    block: int = 256,
) -> torch.Tensor:
    """log p_σ(x) for every x in `data` and every σ: float64 [len(sigmas), N].

    p_σ(x) = 1/S Σ_i N(x; s_i, σ² I), for S `samples`. uint8 inputs are scaled to [0, 1].
    """
    s, x = _flat01(samples), _flat01(data)
    dim, count = s.shape[1], s.shape[0]
    s_sq = (s * s).sum(dim=1)
    sig = torch.tensor(list(sigmas), dtype=torch.float64)
    norm = -math.log(count) - 0.5 * dim * torch.log(2 * math.pi * sig**2)  # [K]
    out = []
    for i in range(0, len(x), block):
        xb = x[i : i + block]
        d2 = ((xb * xb).sum(dim=1)[:, None] + s_sq[None, :] - 2.0 * xb @ s.T).clamp_min_(0)
        d2 = d2.double()  # [B, S]
        ll = torch.stack([torch.logsumexp(-d2 / (2 * sg * sg), dim=1) for sg in sig.tolist()])
        out.append(ll + norm[:, None])
    return torch.cat(out, dim=1)


def parzen_score(
    samples: torch.Tensor,
    val: torch.Tensor,
    test: torch.Tensor,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    block: int = 256,
) -> dict[str, float]:
    """σ by grid search on `val`, then the mean test log-likelihood and its standard error."""
    val_ll = parzen_log_likelihood(samples, val, sigmas, block).mean(dim=1)
    best = int(val_ll.argmax())
    sigma = float(sigmas[best])
    test_ll = parzen_log_likelihood(samples, test, [sigma], block)[0]
    return {
        "parzen_ll": test_ll.mean().item(),
        "parzen_ll_se": (test_ll.std() / math.sqrt(len(test_ll))).item()
        if len(test_ll) > 1
        else 0.0,
        "parzen_sigma": sigma,
        "parzen_val_ll": val_ll[best].item(),
    }
