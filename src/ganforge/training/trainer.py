"""The training loop: Algorithm 1 of Goodfellow et al. 2014.

    for each training iteration:
        for k steps:                                    # `discriminator_step`
            sample m noise vectors and m real samples
            update D by ascending  1/m sum [log D(x) + log(1 - D(G(z)))]
        sample m noise vectors                          # `generator_step`
        update G by descending its loss (minimax, non-saturating or hinge: `ganforge.losses`)

Everything else -- AMP, DDP, EMA, statistics, checkpoints, callbacks -- lives in small helpers
around `train_step` so that the algorithm stays readable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganforge.config import ArchOptions, TrainConfig
from ganforge.device import resolve_device
from ganforge.losses import discriminator_loss, generator_loss, mode_seeking_loss
from ganforge.models import GeneratorSpec, build_discriminator, build_generator
from ganforge.models.latent_class import class_prior, z_for_classes
from ganforge.models.spec import resolve_arch
from ganforge.recipe import DataFacts, auto_labels, training_steps
from ganforge.training.augment import diff_augment
from ganforge.training.callbacks import Callback
from ganforge.training.data import TensorSampler
from ganforge.training.device_policy import choose_device_settings, log_choices
from ganforge.training.distributed import (
    DistContext,
    broadcast_buffers,
    current_context,
    gather_objects,
)
from ganforge.training.ema import EMA
from ganforge.training.precision import precision_for
from ganforge.training.state import (
    LAST_CHECKPOINT,
    capture_rng,
    drop_replaced,
    load_state,
    remove_stale_temp_files,
    restart_reasons,
    restore_rng,
    save_state,
    set_aside,
)

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left untouched."""


_NON_FINITE_HINT = (
    "training stopped; the last good checkpoint is kept. Lower the learning rates, "
    "try amp: off, or another loss."
)


def make_spec(
    config: TrainConfig,
    sample_shape: Sequence[int],
    num_classes: int = 0,
    class_names: Sequence[str] = (),
    labels: torch.Tensor | None = None,
) -> GeneratorSpec:
    """The architecture `config` asks for, on data of `sample_shape` with `num_classes`.

    `labels` (the training labels) give a latent-class generator its class prior; without
    them `labels: auto` means none.
    """
    has_labels = (
        num_classes >= 2 and labels is not None and labels.numel() > 0 and bool((labels >= 0).all())
    )
    use = config.labels
    if use == "auto":
        facts = DataFacts(tuple(int(s) for s in sample_shape), 0, num_classes if has_labels else 0)
        use, _ = auto_labels(facts, resolve_arch(config.model, sample_shape), config.pack)
    if use == "conditional" and num_classes < 2:
        raise ValueError(
            "train.labels is conditional but the data have no class labels: set train.labels: none"
        )
    if use == "latent" and not has_labels:
        raise ValueError(
            "train.labels is latent but the data have no class labels: "
            "set train.labels: auto or none"
        )
    labelled = use in ("conditional", "latent")
    prior = class_prior(labels, num_classes) if use == "latent" and labels is not None else ()
    arch = config.model_dump(include=set(ArchOptions.model_fields))
    try:
        return GeneratorSpec(
            **arch,
            arch=resolve_arch(config.model, sample_shape),
            sample_shape=tuple(int(s) for s in sample_shape),
            num_classes=num_classes if labelled else 0,
            class_names=tuple(class_names) if labelled else (),
            class_prior=prior,
        )
    except ValidationError as err:  # one plain sentence per problem, not pydantic's layout
        problems = (e["msg"].removeprefix("Value error, ") for e in err.errors())
        raise ValueError("; ".join(problems)) from None


@dataclass
class TrainResult:
    """What a finished `fit` hands back (modules are the bare ones, on the training device)."""

    generator: nn.Module
    ema: nn.Module | None
    discriminator: nn.Module
    spec: GeneratorSpec
    step: int
    epoch: int
    history: list[dict[str, float]]
    last: dict[str, float]
    seconds: float  # this session
    total_seconds: float  # over all sessions of a resumed run
    images_per_s: float
    device: str
    amp: str
    channels_last: bool = False
    device_reasons: dict[str, str] = field(default_factory=dict)  # why amp / layout / compile
    resumed_from: int | None = None
    restart_reasons: list[str] = field(default_factory=list)
    budget: str = ""  # which length key set the number of steps (`ganforge.recipe.training_steps`)


def _grad_norm(module: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E_x ||grad_x D(x)||² over the batch (Mescheder et al. 2018), differentiable in D's weights.

    `real` must require grad and `real_logits` come from it; D's logit is differentiated (for
    the cross-entropy losses that is the usual choice: the penalty keeps D's logit smooth on
    the data).
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.float().square().flatten(1).sum(dim=1).mean()


def _spread(x: torch.Tensor) -> torch.Tensor:
    """Mean pairwise distance within a batch (the sample diversity the collapse check uses)."""
    flat = x.detach().float().flatten(1)
    return torch.pdist(flat).mean() if flat.shape[0] > 1 else torch.zeros((), device=x.device)


class GANTrainer:
    """One GAN, its optimizers and its data, trained by `fit()`; resumable from a checkpoint."""

    def __init__(
        self,
        config: TrainConfig,
        spec: GeneratorSpec,
        data: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        seed: int = 0,
        dataset_hash: str | None = None,
        dist: DistContext | None = None,
    ) -> None:
        self.config, self.spec, self.seed = config, spec, seed
        self.dataset_hash = dataset_hash
        self.dist = dist or current_context()
        device = resolve_device(config.device)
        if device.type == "cuda" and self.dist.enabled:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        # The latent class's shares, on the device once: each step draws z₀ from them.
        self._class_prior = torch.tensor(spec.class_prior, dtype=torch.float64, device=device)
        # amp / channels_last / compile per device, by measurement: `training.device_policy`.
        self.device_choices = choose_device_settings(
            device.type,
            "image" if spec.is_image else "points",
            amp=config.amp,
            channels_last=config.channels_last,
            compile=config.compile,
        )
        log_choices(self.device_choices, device.type)
        self.precision = precision_for(self.device_choices.amp, device)
        self.precision.configure_backends()
        self.channels_last = self.device_choices.channels_last
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        # Identical initial weights on every rank; then each rank draws its own noise.
        torch.manual_seed(seed)
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        self.g_core = build_generator(spec).to(device, memory_format=fmt)
        self.d_core = build_discriminator(spec).to(device, memory_format=fmt)
        gen = torch.Generator().manual_seed(seed + 1)
        n = config.num_sample_images
        self.fixed_z = torch.randn(n, spec.nz, generator=gen).to(device)
        self.fixed_labels = (
            (torch.arange(n) % spec.num_classes).to(device) if spec.conditional else None
        )
        torch.manual_seed(seed + 7919 * self.dist.rank)

        self.ema = EMA(self.g_core, config.ema_decay) if config.ema_decay else None
        self.opt_g = self._optimizer(self.g_core, config.lr_g)
        self.opt_d = self._optimizer(self.d_core, config.lr_d)
        self.scaler_g = self.precision.make_scaler()
        self.scaler_d = self.precision.make_scaler()
        self.G, self.D = self._wrap(self.g_core), self._wrap(self.d_core)
        self.g_sample = torch.compile(self.g_core) if config.compile else self.g_core
        self.d_on_fakes = torch.compile(self.d_core) if config.compile else self.d_core

        self.sampler = TensorSampler(
            data,
            labels if spec.labelled else None,
            config.batch_size,
            seed,
            device,
            self.dist.rank,
            self.dist.world_size,
            self.channels_last,
        )
        self.total_steps, self.budget = training_steps(
            config, self.sampler.batches_per_epoch, self.dist.world_size
        )
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.elapsed_before = 0.0  # training seconds of earlier sessions (resume)
        self.resumed_from: int | None = None
        self.restart_reasons: list[str] = []
        self.callback_states: dict[str, Any] = {}  # Callback.state_dict()s, by state_key
        self._reset_stats()

    # ----------------------------------------------------------------- set-up helpers
    def _optimizer(self, module: nn.Module, lr: float) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "adam":
            return torch.optim.Adam(
                module.parameters(), lr=lr, betas=(c.beta1, c.beta2), fused=True
            )
        return torch.optim.SGD(module.parameters(), lr=lr, momentum=c.momentum, foreach=True)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Buffers (BatchNorm statistics) are not broadcast at every forward: D runs twice
            # before one backward, which that broadcast would break. `_sync_buffers` makes
            # ranks agree before anything is saved.
            module = DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)
        return torch.compile(module) if self.config.compile else module

    # ----------------------------------------------------------------- Algorithm 1
    def train_step(self) -> None:
        """One iteration: k discriminator updates, then one generator update."""
        k = self.config.d_steps
        for i in range(k):
            real, labels = self.sampler.next_batch()
            z, fake_labels = self.latents(real.shape[0], labels)
            fake = self.generate(z, fake_labels, for_generator_step=i == k - 1)
            self.discriminator_step(real, fake, labels, fake_labels)
        # G has not changed since it drew `fake`: they are samples of the current G, so G's
        # step reuses them (as the PyTorch example does) rather than paying another forward.
        self.generator_step(fake, fake_labels, z)
        if self.ema is not None:
            self.ema.update(self.g_core, self.step)

    def discriminator_step(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        labels: torch.Tensor | None,
        fake_labels: torch.Tensor | None = None,
    ) -> None:
        """Ascend log D(x) + log(1 - D(G(z))) (descend `discriminator_loss`).

        `labels` go with `real`, `fake_labels` (by default the same) with `fake`.
        """
        fake_labels = labels if fake_labels is None else fake_labels
        if not self.spec.labelled:
            labels = fake_labels = None
        # Real and fake go through D separately (as in Radford et al.'s code): a BatchNorm D
        # then normalises fakes with fake-batch statistics here and in G's step alike, so both
        # steps judge with the same function. Under DDP, D is wrapped with
        # broadcast_buffers=False so that two forwards before one backward are legal.
        # R1 (lazy: every r1_every-th step, weighted by r1_every) needs D's gradient w.r.t. the
        # real images themselves, before augmentation (as in StyleGAN2-ADA).
        c = self.config
        with_r1 = c.r1_gamma > 0 and self.step % c.r1_every == 0
        if with_r1:
            real = real.detach().requires_grad_(True)
        with self.precision.autocast():
            real_logits = self.D(self.d_input(real), labels).float()
            fake_logits = self.D(self.d_input(fake.detach().to(real.dtype)), fake_labels).float()
            loss = discriminator_loss(real_logits, fake_logits, c.loss, c.label_smoothing)
        total = loss
        if with_r1:
            total = loss + (0.5 * c.r1_gamma * c.r1_every) * r1_penalty(real_logits, real)
        self._stats["grad_norm_d"] = self._update(total, self.D, self.opt_d, self.scaler_d)
        self._accumulate(
            loss_d=loss.detach(),
            d_real=torch.sigmoid(real_logits.detach()).mean(),
            d_fake=torch.sigmoid(fake_logits.detach()).mean(),
        )
        if self._want_stats:
            self._stats["spread_real"] = _spread(real)
            self._stats["spread_fake"] = _spread(fake)

    def generator_step(
        self, fake: torch.Tensor, labels: torch.Tensor | None, z: torch.Tensor | None = None
    ) -> None:
        """Descend G's loss on D's verdict about its samples (drawn from `z`); D is held fixed."""
        labels = labels if self.spec.labelled else None
        self.d_core.requires_grad_(False)
        with self.precision.autocast():
            logits = self.d_on_fakes(self.d_input(fake, noise=False), labels).float()
            loss = generator_loss(logits, self.config.loss)
        if self.config.mode_seeking > 0 and z is not None:
            half = fake.shape[0] // 2
            ms = mode_seeking_loss(fake[:half], fake[half : 2 * half], z[:half], z[half : 2 * half])
            self._accumulate(mode_seeking=ms.detach())
            loss = loss + self.config.mode_seeking * ms
        self._stats["grad_norm_g"] = self._update(loss, self.G, self.opt_g, self.scaler_g)
        self.d_core.requires_grad_(True)
        self._accumulate(loss_g=loss.detach())

    # ----------------------------------------------------------------- step helpers
    def latents(
        self, n: int, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fresh z [n, nz] for G and the labels its samples carry (for D, and a cGAN's G).

        The labels are the real batch's. With mode seeking the second half repeats the first
        half's, so that samples i and i + n/2 form a same-class pair. A latent-class G reads
        its class from z[:, 0]: that coordinate is drawn inside the interval of each label, so
        D judges every fake with the class G drew.
        """
        z = self.noise(n)
        if labels is None or not self.spec.labelled:
            return z, None
        labels = labels[:n]
        if self.config.mode_seeking > 0:
            half = n // 2
            labels = torch.cat([labels[:half], labels[:half], labels[2 * half :]])
        if self.spec.latent_class:
            u = torch.rand(n, device=self.device)
            z[:, 0] = z_for_classes(labels, self._class_prior, u)
        return z, labels

    def generate(
        self, z: torch.Tensor, labels: torch.Tensor | None, for_generator_step: bool = False
    ) -> torch.Tensor:
        """G's samples for `z` (and a cGAN's labels); with the autograd graph for G's step."""
        labels = labels if self.spec.conditional else None
        with torch.set_grad_enabled(for_generator_step), self.precision.autocast():
            return (self.G if for_generator_step else self.g_sample)(z, labels)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.spec.nz, device=self.device)

    def d_input(self, x: torch.Tensor, noise: bool = True) -> torch.Tensor:
        """What D is shown of x: DiffAugment'ed (both steps), with instance noise (D's step).

        The augmentations are image transforms: toy points reach D as they are.
        """
        if self.spec.is_image:
            x = diff_augment(x, self.config.augment)
        return self.instance_noise(x) if noise else x

    def instance_noise(self, x: torch.Tensor) -> torch.Tensor:
        """Gaussian noise on D's inputs (Sønderby et al. 2016), annealed linearly to zero."""
        sigma = self.config.instance_noise * max(0.0, 1.0 - self.step / self.total_steps)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x

    def _update(
        self,
        loss: torch.Tensor,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
    ) -> torch.Tensor | None:
        """Backward and optimizer step (loss-scaled under fp16); G's/D's grad norm when logging."""
        optimizer.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()
        norm = None
        if self._want_stats:
            if scaler:
                scaler.unscale_(optimizer)
            norm = _grad_norm(module)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return norm

    def _reset_stats(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._stats: dict[str, torch.Tensor | None] = {}
        self._want_stats = False
        self._since_images = 0
        self._since_time = time.perf_counter()

    def _accumulate(self, **values: torch.Tensor) -> None:
        for key, value in values.items():
            self._sums[key] = self._sums[key] + value if key in self._sums else value
            self._counts[key] = self._counts.get(key, 0) + 1

    def _check_finite(self) -> None:
        """Before a checkpoint: the losses since the last log step must be finite."""
        losses = [self._sums[k] for k in ("loss_d", "loss_g") if k in self._sums]
        if losses and not bool(torch.isfinite(torch.stack(losses)).all()):
            raise NonFiniteLossError(
                f"a loss became NaN or infinite before step {self.step}: {_NON_FINITE_HINT}"
            )

    def _flush_stats(self) -> dict[str, float]:
        """Average the accumulated statistics (one host sync); raise if a loss is not finite."""
        keys = list(self._sums)
        stats = {k: self._stats.get(k) for k in ("grad_norm_g", "grad_norm_d")}
        stats.update({k: self._stats.get(k) for k in ("spread_real", "spread_fake")})
        tensors = [self._sums[k] / self._counts[k] for k in keys]
        extra = [k for k, v in stats.items() if v is not None]
        parts = tensors + [stats[k] for k in extra]
        values = torch.stack([t.float().to(self.device) for t in parts]).cpu()
        numbers = dict(zip(keys + extra, values.tolist(), strict=True))
        bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(numbers.get(k, 0.0))]
        if bad:
            raise NonFiniteLossError(
                f"{' and '.join(bad)} became {numbers[bad[0]]} by step {self.step}: "
                + _NON_FINITE_HINT
            )
        elapsed = time.perf_counter() - self._since_time
        row = {"step": self.step}
        for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_g", "grad_norm_d"):
            row[key] = numbers.get(key, math.nan)
        row["images_per_s"] = self._since_images / elapsed if elapsed > 0 else math.nan
        real, fake = numbers.get("spread_real", math.nan), numbers.get("spread_fake", math.nan)
        row["diversity"] = fake / real if real > 0 else math.nan
        self._reset_stats()
        return row

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def fixed_samples(self) -> torch.Tensor:
        """G's (EMA's, when kept) samples for the fixed z, in eval mode, on the CPU."""
        module = self.ema.module if self.ema is not None else self.g_core
        was_training = module.training
        module.eval()
        try:
            return module(self.fixed_z, self.fixed_labels).float().cpu()
        finally:
            module.train(was_training)

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        rng = gather_objects(capture_rng(self.device), self.dist)
        return {
            "format": "ganforge-train-v1",
            "spec": self.spec.model_dump(mode="json"),
            "config": self.config.model_dump(mode="json"),
            "seed": self.seed,
            "dataset_hash": self.dataset_hash,
            "world_size": self.dist.world_size,
            "step": self.step,
            "cursor": self.sampler.cursor,
            "epoch": self.sampler.epoch,
            "generator": self.g_core.state_dict(),
            "generator_ema": self.ema.module.state_dict() if self.ema else None,
            "discriminator": self.d_core.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict() if self.scaler_g else None,
            "scaler_d": self.scaler_d.state_dict() if self.scaler_d else None,
            "rng": rng,
            "history": list(self.history),
            "callbacks": self.callback_states,
            "elapsed": self.elapsed_before + (time.perf_counter() - self._session_start),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g_core.load_state_dict(state["generator"])
        self.d_core.load_state_dict(state["discriminator"])
        if self.ema is not None and state.get("generator_ema") is not None:
            self.ema.module.load_state_dict(state["generator_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        # Options that may change on resume (learning rates, betas) follow the new config.
        for opt, lr in ((self.opt_g, self.config.lr_g), (self.opt_d, self.config.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
                if "betas" in group:
                    group["betas"] = (self.config.beta1, self.config.beta2)
                if "momentum" in group:
                    group["momentum"] = self.config.momentum
        for scaler, key in ((self.scaler_g, "scaler_g"), (self.scaler_d, "scaler_d")):
            if scaler is not None and state.get(key):
                scaler.load_state_dict(state[key])
        self.step = int(state["step"])
        self.sampler.cursor = int(state["cursor"])
        self.history = list(state.get("history", []))
        self.callback_states = dict(state.get("callbacks") or {})
        self.elapsed_before = float(state.get("elapsed", 0.0))
        rng = state.get("rng") or []
        if state.get("world_size") == self.dist.world_size and len(rng) > self.dist.rank:
            restore_rng(rng[self.dist.rank], self.device)
        else:
            log.warning(
                "checkpoint written by %s process(es), resuming with %s: noise streams reseeded",
                state.get("world_size"),
                self.dist.world_size,
            )
            torch.manual_seed(self.seed + 7919 * self.dist.rank + self.step)

    def resume(self, checkpoint_dir: Path) -> bool:
        """Continue from `checkpoint_dir/last.pt` when it belongs to this run; True if resumed."""
        if self.dist.is_main:
            remove_stale_temp_files(Path(checkpoint_dir))
        state = load_state(Path(checkpoint_dir) / LAST_CHECKPOINT)
        if state is None:
            return False
        spec = self.spec.model_dump(mode="json")
        config = self.config.model_dump(mode="json")
        reasons = restart_reasons(state, spec, config, self.seed, self.dataset_hash)
        if int(state.get("step", 0)) > self.total_steps:
            reasons.append(
                f"it is at step {state.get('step')}, beyond this run's {self.total_steps} steps"
            )
        if reasons:
            self.restart_reasons = reasons
            log.warning(
                "checkpoint %s (step %s) does not match this run (%s): starting fresh",
                Path(checkpoint_dir) / LAST_CHECKPOINT,
                state.get("step"),
                "; ".join(reasons),
            )
            if self.dist.is_main:
                set_aside(Path(checkpoint_dir), state, reasons)
            return False
        self.load_state_dict(state)
        self.resumed_from = self.step
        log.info("resumed from step %d of %d", self.step, self.total_steps)
        return True

    def _sync_buffers(self) -> None:
        """Ranks agree on parameters (gradients are averaged); make BatchNorm statistics agree."""
        for module in (self.g_core, self.d_core, self.ema.module if self.ema else None):
            if module is not None:
                broadcast_buffers(module, self.dist)

    def save_checkpoint(self, checkpoint_dir: Path, callbacks: Sequence[Callback]) -> None:
        self._sync_buffers()
        for cb in callbacks:  # callbacks with state (best snapshot, curves) resume with the run
            if cb.state_key:
                self.callback_states[cb.state_key] = cb.state_dict()
        state = self.state_dict()  # collective (RNG states of all ranks): every rank calls it
        if self.dist.is_main:
            path = Path(checkpoint_dir) / LAST_CHECKPOINT
            save_state(path, state)
            drop_replaced(Path(checkpoint_dir), self.step, self.step >= self.total_steps)
            for cb in callbacks:
                cb.on_checkpoint(self, path)

    # ----------------------------------------------------------------- the run
    def fit(
        self,
        callbacks: Sequence[Callback] = (),
        checkpoint_dir: str | Path | None = None,
        stop_after: int | None = None,
    ) -> TrainResult:
        """Train to `total_steps` (or to step `stop_after`, to simulate an interruption)."""
        callbacks = list(callbacks) if self.dist.is_main else []
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self._session_start = time.perf_counter()
        start_step = self.step
        end = min(self.total_steps, stop_after) if stop_after else self.total_steps
        log.info("training %d steps (%s)", self.total_steps, self.budget)
        for cb in callbacks:
            if cb.state_key and cb.state_key in self.callback_states:
                cb.load_state_dict(self.callback_states[cb.state_key])
            cb.on_fit_start(self)
        self._reset_stats()
        images_per_step = self.config.batch_size * self.config.d_steps * self.dist.world_size
        epochs_seen = self.sampler.epoch
        while self.step < end:
            self._want_stats = (self.step + 1) % self.config.log_every == 0 or self.step + 1 == end
            self.train_step()
            self.step += 1
            self._since_images += images_per_step
            if self._want_stats:
                row = self._flush_stats()
                self.history.append(row)
                for cb in callbacks:
                    cb.on_log(self, row)
            if self.sampler.epoch > epochs_seen:
                epochs_seen = self.sampler.epoch
                for cb in callbacks:
                    cb.on_epoch_end(self, epochs_seen)
            if ckpt is not None and (self.step % self.config.checkpoint_every == 0):
                self._check_finite()
                self.save_checkpoint(ckpt, callbacks)
            for cb in callbacks:
                cb.on_step_end(self)
        if self.sampler.cursor % self.sampler.batches_per_epoch and self.step > start_step:
            for cb in callbacks:  # the samples of a last, partial epoch
                cb.on_epoch_end(self, epochs_seen + 1)
        if ckpt is not None and self.step % self.config.checkpoint_every:
            self._check_finite()
            self.save_checkpoint(ckpt, callbacks)
        else:
            self._sync_buffers()
        seconds = time.perf_counter() - self._session_start
        steps = self.step - start_step
        result = TrainResult(
            generator=self.g_core,
            ema=self.ema.module if self.ema else None,
            discriminator=self.d_core,
            spec=self.spec,
            step=self.step,
            epoch=self.sampler.epoch,
            history=self.history,
            last=self.history[-1] if self.history else {},
            seconds=seconds,
            total_seconds=self.elapsed_before + seconds,
            images_per_s=steps * images_per_step / seconds if seconds > 0 and steps else 0.0,
            device=str(self.device),
            amp=self.precision.name,
            channels_last=self.channels_last,
            device_reasons=dict(self.device_choices.reasons),
            resumed_from=self.resumed_from,
            restart_reasons=self.restart_reasons,
            budget=f"{self.total_steps} steps from {self.budget}",
        )
        for cb in callbacks:
            cb.on_fit_end(self, result)
        return result


def fit(
    config: TrainConfig,
    data: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    spec: GeneratorSpec | None = None,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    dataset_hash: str | None = None,
    class_names: Sequence[str] = (),
    dist: DistContext | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train a GAN on `data` (uint8 images [N, C, H, W] or float points [N, D]).

    With `checkpoint_dir`, training resumes from its `last.pt` when that checkpoint belongs to
    this run (same model, optimizer, seed and data) and writes checkpoints there.
    """
    if spec is None:
        num_classes = int(labels.max()) + 1 if labels is not None and labels.numel() else 0
        spec = make_spec(config, data.shape[1:], num_classes, class_names, labels)
    trainer = GANTrainer(
        config, spec, data, labels, seed=seed, dataset_hash=dataset_hash, dist=dist
    )
    if checkpoint_dir is not None:
        trainer.resume(Path(checkpoint_dir))
    return trainer.fit(callbacks, checkpoint_dir, stop_after=stop_after)
