"""GAN objectives on discriminator logits, numerically stable (softplus, never log(sigmoid)).

With D(x) = sigmoid(l(x)) and the identities -log D = softplus(-l), -log(1 - D) = softplus(l),
the value function of Goodfellow et al. 2014 is

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))] = -E[softplus(-l_real)] - E[softplus(l_fake)]

D ascends V; its loss is the mean of the real and the fake terms, -V / 2 (the worked example
of the lectures: D = 0.9 on 16 real and 0.2 on 16 fake images gives 0.164).

* `minimax`: G descends V itself, i.e. minimises E[log(1 - D(G(z)))] = -E[softplus(l_fake)]. Its
  gradient w.r.t. the logit is -sigmoid(l): it vanishes when D rejects the fakes confidently
  (D(G(z)) -> 0), which is early training -- the saturation the paper warns about.
* `non_saturating`: G maximises log D(G(z)) instead (the "flipped labels" trick), minimising
  E[softplus(-l_fake)]; the gradient is -(1 - sigmoid(l)) -> -1 as D(G(z)) -> 0. Same fixed point.
* `hinge` (Lim & Ye 2017; Miyato et al. 2018): D minimises the mean of E[relu(1 - l_real)]
  and E[relu(1 + l_fake)], G minimises -E[l_fake].

One-sided label smoothing (Salimans et al. 2016) replaces D's real target 1 by
1 - `label_smoothing` in the cross-entropy losses; the fake target stays 0.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

Objective = Literal["minimax", "non_saturating", "hinge"]
OBJECTIVES: tuple[str, ...] = ("minimax", "non_saturating", "hinge")
LOG4 = math.log(4.0)


def _check(kind: str) -> None:
    if kind not in OBJECTIVES:
        raise ValueError(f"unknown GAN objective {kind!r}: use one of {', '.join(OBJECTIVES)}")


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    kind: Objective = "non_saturating",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """D's loss: the mean of its loss on the real and on the fake batch (a scalar)."""
    _check(kind)
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if kind == "hinge":
        return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())
    # minimax and non_saturating share D's loss: binary cross-entropy on logits.
    target = 1.0 - label_smoothing
    real_term = target * F.softplus(-real_logits) + (1.0 - target) * F.softplus(real_logits)
    return 0.5 * (real_term.mean() + F.softplus(fake_logits).mean())


def generator_loss(fake_logits: torch.Tensor, kind: Objective = "non_saturating") -> torch.Tensor:
    """G's loss on D's logits for its samples (a scalar)."""
    _check(kind)
    fake_logits = fake_logits.float()
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()  # = E[log(1 - D(G(z)))]
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()  # = -E[log D(G(z))]
    return -fake_logits.mean()


def value_function(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """V(D, G) of Goodfellow et al. estimated on a batch; -log 4 at the global optimum."""
    return -F.softplus(-real_logits.float()).mean() - F.softplus(fake_logits.float()).mean()


def mode_seeking_loss(
    fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor
) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019): 1 / (mean|G(z_a) - G(z_b)| / mean|z_a - z_b| + 1e-5).

    Small when two latents of the same class give images far apart: added to G's loss, it
    pushes G to spend its latent on variety within a class (a cGAN's usual partial collapse).
    """
    ratio = (fake_a.float() - fake_b.float()).abs().mean() / (z_a - z_b).abs().mean()
    return 1.0 / (ratio + 1e-5)
