"""A trainer's checkpoint: what `GANTrainer` writes to `last.pt` and how it resumes from it.

The file side (atomic writes, RNG capture, when a checkpoint may be continued, setting aside
another run's) lives in `state.py`; this is the trainer side, a base class of `GANTrainer`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from ganforge.config import TrainConfig
from ganforge.models import GeneratorSpec
from ganforge.training.distributed import DistContext, gather_objects
from ganforge.training.networks import Networks
from ganforge.training.sampler import TensorSampler
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

FORMAT = "ganforge-train-v1"


class Checkpointing:
    """state_dict / load_state_dict / resume / write_checkpoint: the networks, where the run
    stands (step, data cursor, history, callback states, time) and every RNG, so that a resumed
    run continues the uninterrupted one exactly."""

    # What a checkpoint reads and restores of the trainer (set by `GANTrainer.__init__`).
    config: TrainConfig
    spec: GeneratorSpec
    seed: int
    dataset_hash: str | None
    dist: DistContext
    device: torch.device
    nets: Networks
    sampler: TensorSampler
    step: int
    total_steps: int
    history: list[dict[str, float]]
    callback_states: dict[str, Any]  # Callback.state_dict()s, by state_key
    elapsed_before: float  # training seconds of earlier sessions
    resumed_from: int | None
    restart_reasons: list[str]
    _session_start: float

    def state_dict(self) -> dict[str, Any]:
        rng = gather_objects(capture_rng(self.device), self.dist)
        return {
            "format": FORMAT,
            "spec": self.spec.model_dump(mode="json"),
            "config": self.config.model_dump(mode="json"),
            "seed": self.seed,
            "dataset_hash": self.dataset_hash,
            "world_size": self.dist.world_size,
            "step": self.step,
            "cursor": self.sampler.cursor,
            "epoch": self.sampler.epoch,
            **self.nets.state_dict(),
            "rng": rng,
            "history": list(self.history),
            "callbacks": self.callback_states,
            "elapsed": self.elapsed_before + (time.perf_counter() - self._session_start),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state, self.config)
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

    def write_checkpoint(self, checkpoint_dir: Path) -> Path | None:
        """Write `checkpoint_dir/last.pt` (rank 0) and drop the set-aside checkpoints it passed.

        Collective (it gathers the RNG states of all ranks): every rank calls it; rank 0
        gets the path written, the others None.
        """
        state = self.state_dict()
        if not self.dist.is_main:
            return None
        path = Path(checkpoint_dir) / LAST_CHECKPOINT
        save_state(path, state)
        drop_replaced(Path(checkpoint_dir), self.step, self.step >= self.total_steps)
        return path
