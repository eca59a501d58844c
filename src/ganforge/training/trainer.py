"""The training loop: `fit` runs iterations of Algorithm 1 (`step.py`) to the run's length.

Around each iteration it keeps the run's statistics (`stats.py`), calls the callbacks, and
writes checkpoints (`checkpoint.py`); G and D, their optimisers and updates are `networks.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.config import TrainConfig
from ganforge.device import cpu_has_bf16_units, resolve_device
from ganforge.models import GeneratorSpec
from ganforge.recipe import training_steps
from ganforge.training.amp import precision_for
from ganforge.training.architecture import make_spec
from ganforge.training.checkpoint import Checkpointing
from ganforge.training.clusters import training_labels
from ganforge.training.device_policy import choose_device_settings, log_choices
from ganforge.training.distributed import DistContext, current_context
from ganforge.training.ema import EMA
from ganforge.training.networks import build_networks
from ganforge.training.sampler import TensorSampler
from ganforge.training.stats import NonFiniteLossError, RunningStats
from ganforge.training.step import GANStep, r1_penalty

__all__ = [
    "Callback",
    "GANTrainer",
    "NonFiniteLossError",
    "TrainResult",
    "fit",
    "make_spec",
    "r1_penalty",
]

log = logging.getLogger(__name__)


class Callback:
    """Override what you need; every hook is a no-op by default.

    A callback with state that must survive a resume (a best snapshot, a curve) sets
    `state_key`: the trainer saves its `state_dict()` in the checkpoint under that key and hands
    it back to `load_state_dict()` before `on_fit_start` of the resumed run.
    """

    state_key: str = ""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def on_fit_start(self, trainer: GANTrainer) -> None: ...

    def on_step_end(self, trainer: GANTrainer) -> None: ...

    def on_log(self, trainer: GANTrainer, row: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: GANTrainer, epoch: int) -> None: ...

    def on_checkpoint(self, trainer: GANTrainer, path: Path) -> None: ...

    def on_fit_end(self, trainer: GANTrainer, result: TrainResult) -> None: ...


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


class GANTrainer(Checkpointing):
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
        self.device = device = self._choose_device()
        # Identical initial weights on every rank; then each rank draws its own noise.
        torch.manual_seed(seed)
        self.nets = build_networks(
            config, spec, device, self.dist, self.precision, self.channels_last
        )
        gen = torch.Generator().manual_seed(seed + 1)
        n = config.num_sample_images
        self.fixed_z = torch.randn(n, spec.nz, generator=gen).to(device)
        self.fixed_labels = (
            (torch.arange(n) % spec.num_classes).to(device) if spec.conditional else None
        )
        torch.manual_seed(seed + 7919 * self.dist.rank)

        rank, world = self.dist.rank, self.dist.world_size
        data_labels = labels if spec.labelled else None
        self.sampler = TensorSampler(
            data, data_labels, config.batch_size, seed, device, rank, world, self.channels_last
        )
        self.total_steps, self.budget = training_steps(
            config, self.sampler.batches_per_epoch, world
        )
        self.images_per_step = config.batch_size * config.d_steps * world
        self.stats = RunningStats(device)
        self.gan_step = GANStep(config, spec, self.nets, self.precision, self.stats, device)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.elapsed_before = 0.0  # training seconds of earlier sessions (resume)
        self.resumed_from: int | None = None
        self.restart_reasons: list[str] = []
        self.callback_states: dict[str, Any] = {}  # Callback.state_dict()s, by state_key
        self._session_start = time.perf_counter()

    def _choose_device(self) -> torch.device:
        """The device (this rank's GPU under DDP), and amp / channels_last / compile on it."""
        device = resolve_device(self.config.device)
        if device.type == "cuda" and self.dist.enabled:
            device = torch.device("cuda", self.dist.local_rank)
        # amp / channels_last / compile per device, by measurement: `training.device_policy`.
        self.device_choices = choose_device_settings(
            device.type,
            "image" if self.spec.is_image else "points",
            amp=self.config.amp,
            channels_last=self.config.channels_last,
            compile=self.config.compile,
            cpu_bf16=device.type == "cpu" and cpu_has_bf16_units(),
        )
        log_choices(self.device_choices, device.type)
        self.precision = precision_for(self.device_choices.amp, device)
        self.precision.configure_backends()
        self.channels_last = self.device_choices.channels_last
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return device

    # The bare networks and optimisers, as callbacks and tests read them.
    @property
    def g_core(self) -> nn.Module:
        return self.nets.g_core

    @property
    def d_core(self) -> nn.Module:
        return self.nets.d_core

    @property
    def ema(self) -> EMA | None:
        return self.nets.ema

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.nets.opt_g

    @property
    def opt_d(self) -> torch.optim.Optimizer:
        return self.nets.opt_d

    def train_step(self) -> None:
        """One iteration at the current step: k discriminator updates, then one generator update."""
        self.gan_step(self.sampler, self.step, self.total_steps)

    def latents(
        self, n: int, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fresh z [n, nz] and the labels its samples carry (`GANStep.latents`)."""
        return self.gan_step.latents(n, labels)

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

    def save_checkpoint(self, checkpoint_dir: Path, callbacks: Sequence[Callback]) -> None:
        """`last.pt` with the callbacks' states (a best snapshot, curves); then their hook."""
        self.nets.sync_buffers(self.dist)
        for cb in callbacks:
            if cb.state_key:
                self.callback_states[cb.state_key] = cb.state_dict()
        path = self.write_checkpoint(checkpoint_dir)
        if path is not None:  # rank 0
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
        self.stats.reset()
        epochs_seen = self.sampler.epoch
        while self.step < end:
            self.stats.want = (self.step + 1) % self.config.log_every == 0 or self.step + 1 == end
            self.train_step()
            self.step += 1
            self.stats.images += self.images_per_step
            if self.stats.want:
                row = self.stats.flush(self.step)
                self.history.append(row)
                for cb in callbacks:
                    cb.on_log(self, row)
            if self.sampler.epoch > epochs_seen:
                epochs_seen = self.sampler.epoch
                for cb in callbacks:
                    cb.on_epoch_end(self, epochs_seen)
            if ckpt is not None and (self.step % self.config.checkpoint_every == 0):
                self.stats.check_finite(self.step)
                self.save_checkpoint(ckpt, callbacks)
            for cb in callbacks:
                cb.on_step_end(self)
        if self.sampler.cursor % self.sampler.batches_per_epoch and self.step > start_step:
            for cb in callbacks:  # the samples of a last, partial epoch
                cb.on_epoch_end(self, epochs_seen + 1)
        if ckpt is not None and self.step % self.config.checkpoint_every:
            self.stats.check_finite(self.step)
            self.save_checkpoint(ckpt, callbacks)
        else:
            self.nets.sync_buffers(self.dist)
        result = self._result(self.step - start_step)
        for cb in callbacks:
            cb.on_fit_end(self, result)
        return result

    def _result(self, steps: int) -> TrainResult:
        """What this session of `steps` iterations hands back."""
        seconds = time.perf_counter() - self._session_start
        return TrainResult(
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
            images_per_s=steps * self.images_per_step / seconds if seconds > 0 and steps else 0.0,
            device=str(self.device),
            amp=self.precision.name,
            channels_last=self.channels_last,
            device_reasons=dict(self.device_choices.reasons),
            resumed_from=self.resumed_from,
            restart_reasons=self.restart_reasons,
            budget=f"{self.total_steps} steps from {self.budget}",
        )


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

    With `config.clusters` and no `spec`, the labels are the k-means clusters of `data`
    (`training_labels`); a caller that passes a spec passes the labels it was made with.
    With `checkpoint_dir`, training resumes from its `last.pt` when that checkpoint belongs to
    this run (same model, optimizer, seed and data) and writes checkpoints there.
    """
    if spec is None:
        num_classes = int(labels.max()) + 1 if labels is not None and labels.numel() else 0
        used = training_labels(config.clusters, data, labels, num_classes, class_names, seed)
        labels = used.labels
        spec = make_spec(config, data.shape[1:], used.num_classes, used.class_names, labels)
    trainer = GANTrainer(
        config, spec, data, labels, seed=seed, dataset_hash=dataset_hash, dist=dist
    )
    if checkpoint_dir is not None:
        trainer.resume(Path(checkpoint_dir))
    return trainer.fit(callbacks, checkpoint_dir, stop_after=stop_after)
