"""G and D as a training run holds them: the bare modules, the wrappers the step calls, EMA,
optimisers and loss scalers; built once, updated one call at a time, saved and restored together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganforge.config import TrainConfig
from ganforge.models import GeneratorSpec, build_discriminator, build_generator
from ganforge.training.amp import Precision
from ganforge.training.distributed import DistContext, broadcast_buffers
from ganforge.training.ema import EMA
from ganforge.training.stats import grad_norm


@dataclass
class Networks:
    """The players of one run and what updates them."""

    g_core: nn.Module  # the bare generator: what is saved, averaged and exported
    d_core: nn.Module  # the bare discriminator
    G: nn.Module  # g_core under DDP / compile: G's own update
    D: nn.Module  # d_core under DDP / compile: D's own update
    g_sample: nn.Module  # g_core (compiled) drawing the fakes of D's update: no DDP needed
    d_on_fakes: nn.Module  # d_core (compiled) judging G's fakes in G's update: D is frozen
    ema: EMA | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler | None  # fp16 only
    scaler_d: torch.amp.GradScaler | None

    def update_g(self, loss: torch.Tensor, norm: bool) -> torch.Tensor | None:
        """One update of G on `loss`; G's gradient norm when `norm`."""
        return optimizer_update(loss, self.G, self.opt_g, self.scaler_g, norm)

    def update_d(self, loss: torch.Tensor, norm: bool) -> torch.Tensor | None:
        """One update of D on `loss`; D's gradient norm when `norm`."""
        return optimizer_update(loss, self.D, self.opt_d, self.scaler_d, norm)

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.g_core.state_dict(),
            "generator_ema": self.ema.module.state_dict() if self.ema else None,
            "discriminator": self.d_core.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict() if self.scaler_g else None,
            "scaler_d": self.scaler_d.state_dict() if self.scaler_d else None,
        }

    def load_state_dict(self, state: dict[str, Any], config: TrainConfig) -> None:
        """Restore `state`; options that may change on resume (learning rates, betas,
        momentum) follow `config`."""
        self.g_core.load_state_dict(state["generator"])
        self.d_core.load_state_dict(state["discriminator"])
        if self.ema is not None and state.get("generator_ema") is not None:
            self.ema.module.load_state_dict(state["generator_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for opt, lr in ((self.opt_g, config.lr_g), (self.opt_d, config.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
                if "betas" in group:
                    group["betas"] = (config.beta1, config.beta2)
                if "momentum" in group:
                    group["momentum"] = config.momentum
        for scaler, key in ((self.scaler_g, "scaler_g"), (self.scaler_d, "scaler_d")):
            if scaler is not None and state.get(key):
                scaler.load_state_dict(state[key])

    def sync_buffers(self, dist: DistContext) -> None:
        """Ranks agree on parameters (gradients are averaged); make BatchNorm statistics agree."""
        for module in (self.g_core, self.d_core, self.ema.module if self.ema else None):
            if module is not None:
                broadcast_buffers(module, dist)


def build_networks(
    config: TrainConfig,
    spec: GeneratorSpec,
    device: torch.device,
    dist: DistContext,
    precision: Precision,
    channels_last: bool,
) -> Networks:
    """G and D of `spec` on `device` (initialised from torch's global RNG), and their optimisers."""
    fmt = torch.channels_last if channels_last else torch.preserve_format
    g_core = build_generator(spec).to(device).to(memory_format=fmt)
    d_core = build_discriminator(spec).to(device).to(memory_format=fmt)
    ema = EMA(g_core, config.ema_decay) if config.ema_decay else None
    opt_g = make_optimizer(g_core, config.lr_g, config)
    opt_d = make_optimizer(d_core, config.lr_d, config)
    scaler_g, scaler_d = precision.make_scaler(), precision.make_scaler()
    G = _compiled(_ddp(g_core, device, dist), config.compile)
    D = _compiled(_ddp(d_core, device, dist), config.compile)
    return Networks(
        g_core=g_core,
        d_core=d_core,
        G=G,
        D=D,
        g_sample=_compiled(g_core, config.compile),
        d_on_fakes=_compiled(d_core, config.compile),
        ema=ema,
        opt_g=opt_g,
        opt_d=opt_d,
        scaler_g=scaler_g,
        scaler_d=scaler_d,
    )


def make_optimizer(module: nn.Module, lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (β₁, β₂) or SGD with momentum, as `config` says, at learning rate `lr`."""
    if config.optimizer == "adam":
        betas = (config.beta1, config.beta2)
        return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, fused=True)
    return torch.optim.SGD(module.parameters(), lr=lr, momentum=config.momentum, foreach=True)


def optimizer_update(
    loss: torch.Tensor,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    norm: bool,
) -> torch.Tensor | None:
    """Backward and optimizer step (loss-scaled under fp16); `module`'s grad norm when `norm`."""
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler else loss).backward()
    result = None
    if norm:
        if scaler:
            scaler.unscale_(optimizer)
        result = grad_norm(module)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return result


def _ddp(module: nn.Module, device: torch.device, dist: DistContext) -> nn.Module:
    if not dist.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    # Buffers (BatchNorm statistics) are not broadcast at every forward: D runs twice before
    # one backward, which that broadcast would break. `Networks.sync_buffers` makes ranks
    # agree before anything is saved.
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def _compiled(module: nn.Module, on: bool) -> nn.Module:
    return cast(nn.Module, torch.compile(module)) if on else module
