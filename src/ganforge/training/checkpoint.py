"""A trainer's checkpoint: what `GANTrainer` writes to `last.pt` and how it resumes from it.

The file side (atomic writes, RNG capture, when a checkpoint may be continued, setting aside
another run's or an unusable one) lives in `state.py`; this is the trainer side, a base class
of `GANTrainer`. A checkpoint set aside is kept until this run finishes: nothing of the
previous training is lost until its successor has finished.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from ganforge.config import TrainConfig
from ganforge.models import GeneratorSpec
from ganforge.models.checkpoint import describe, weight_problems
from ganforge.training.distributed import DistContext, gather_objects
from ganforge.training.networks import Networks
from ganforge.training.sampler import TensorSampler
from ganforge.training.state import (
    FORMAT,
    LAST_CHECKPOINT,
    UnusableCheckpoint,
    capture_rng,
    drop_replaced,
    load_state,
    remove_stale_temp_files,
    restart_reasons,
    restore_rng,
    save_state,
    set_aside,
    set_aside_unusable,
)

__all__ = ["FORMAT", "Checkpointing"]

log = logging.getLogger(__name__)


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
        """Restore a checked state (`state.load_state`) that fits this trainer (`fit_problems`)."""
        self.nets.load_state_dict(state, self.config)
        self.step = int(state["step"])
        self.sampler.cursor = int(state["cursor"])
        self.history = list(state.get("history", []))
        self.callback_states = dict(state.get("callbacks") or {})
        self.elapsed_before = float(state.get("elapsed", 0.0))
        rng = state.get("rng") or []
        if self._same_processes(state):
            restore_rng(rng[self.dist.rank], self.device)
        else:
            log.warning(
                "checkpoint written by %s process(es), resuming with %s: noise streams reseeded",
                state.get("world_size"),
                self.dist.world_size,
            )
            torch.manual_seed(self.seed + 7919 * self.dist.rank + self.step)

    def _same_processes(self, state: dict[str, Any]) -> bool:
        rng = state.get("rng") or []
        return state.get("world_size") == self.dist.world_size and len(rng) > self.dist.rank

    def fit_problems(self, state: dict[str, Any]) -> str | None:
        """Why a checked `state` of this spec cannot load into this trainer (a tampered or
        foreign file), or None.

        Checked before anything is loaded (torch's `load_state_dict` copies what fits before
        it raises), and the same on every rank (each rank's RNG state is tried, and put back),
        so that all DDP ranks resume or all start fresh.
        """
        modules = [("generator", self.nets.g_core), ("discriminator", self.nets.d_core)]
        if self.nets.ema is not None and state["generator_ema"] is not None:
            modules.append(("generator_ema", self.nets.ema.module))
        for key, module in modules:
            problem = weight_problems(module, state[key])
            if problem is not None:
                return f"{key!r}: {problem}"
        for key, opt in (("opt_g", self.nets.opt_g), ("opt_d", self.nets.opt_d)):
            problem = optimizer_problems(opt, state[key])
            if problem is not None:
                return f"{key!r}: {problem}"
        if not self._same_processes(state):
            return None  # its RNG states go unused
        before = capture_rng(self.device)
        try:
            for rng in state["rng"]:
                restore_rng(rng, self.device)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            said = " ".join(str(err).split())[:80]
            return f"its RNG state cannot be restored: {type(err).__name__}: {said}"
        finally:
            restore_rng(before, self.device)
        return None

    def resume(self, checkpoint_dir: Path) -> bool:
        """Continue from `checkpoint_dir/last.pt` when it belongs to this run; True if resumed.

        One of another configuration is set aside (`set_aside`); one that is damaged or not a
        ganforge training checkpoint too (`set_aside_unusable`): either way this run starts
        fresh and the old file stays until this run finishes. One that cannot be read at
        all (permissions) raises `CheckpointError`.
        """
        path = Path(checkpoint_dir) / LAST_CHECKPOINT
        if self.dist.is_main:
            remove_stale_temp_files(Path(checkpoint_dir))
        try:
            state = load_state(path)
            if state is None:
                return False
            if self._changed(Path(checkpoint_dir), state):
                return False
            problem = self.fit_problems(state)
            if problem is not None:
                raise UnusableCheckpoint(path, problem)
            self.load_state_dict(state)
        except UnusableCheckpoint as err:
            self.restart_reasons = [f"{path} cannot be resumed ({err.problem})"]
            if self.dist.is_main:
                set_aside_unusable(err)
            return False
        self.resumed_from = self.step
        log.info("resumed from step %d of %d", self.step, self.total_steps)
        return True

    def _changed(self, checkpoint_dir: Path, state: dict[str, Any]) -> bool:
        """True (and `state`'s file set aside) when `state` is another configuration's run."""
        spec = self.spec.model_dump(mode="json")
        config = self.config.model_dump(mode="json")
        reasons = restart_reasons(state, spec, config, self.seed, self.dataset_hash)
        if state["step"] > self.total_steps:
            reasons.append(
                f"it is at step {state['step']}, beyond this run's {self.total_steps} steps"
            )
        if not reasons:
            return False
        self.restart_reasons = reasons
        log.warning(
            "checkpoint %s (step %s) does not match this run (%s): starting fresh",
            checkpoint_dir / LAST_CHECKPOINT,
            state["step"],
            "; ".join(reasons),
        )
        if self.dist.is_main:
            set_aside(checkpoint_dir, state, reasons)
        return True

    def write_checkpoint(self, checkpoint_dir: Path) -> Path | None:
        """Write `checkpoint_dir/last.pt` (rank 0); at the run's last step, also drop the
        checkpoints set aside when it started (this run is their successor, now finished).

        Collective (it gathers the RNG states of all ranks): every rank calls it; rank 0
        gets the path written, the others None.
        """
        state = self.state_dict()
        if not self.dist.is_main:
            return None
        path = Path(checkpoint_dir) / LAST_CHECKPOINT
        save_state(path, state)
        if self.step >= self.total_steps:
            drop_replaced(Path(checkpoint_dir))
        return path


def optimizer_problems(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> str | None:
    """Why `state` is no saved state of `optimizer` (its groups, sizes, tensor shapes), or None."""
    groups = state.get("param_groups")
    per_param = state.get("state")
    if not isinstance(groups, list) or not isinstance(per_param, dict):
        return "expected a dict with 'state' (a dict) and 'param_groups' (a list)"
    if len(groups) != len(optimizer.param_groups) or any(
        not isinstance(g, dict) or not isinstance(g.get("params"), list) for g in groups
    ):
        return f"{len(groups)} parameter group(s) of another optimizer"
    shapes = {}
    for saved, group in zip(groups, optimizer.param_groups, strict=True):
        if len(saved["params"]) != len(group["params"]):
            return f"a group of {len(saved['params'])} parameters for {len(group['params'])}"
        shapes.update({i: p.shape for i, p in zip(saved["params"], group["params"], strict=True)})
    for index, values in per_param.items():
        if index not in shapes or not isinstance(values, dict):
            return f"state of an unknown parameter {str(index)[:20]!r}"
        for name, value in values.items():
            if not isinstance(value, torch.Tensor | int | float):
                return f"{name!r} of parameter {index} is {describe(value)}"
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != shapes[index]:
                return f"{name!r} of parameter {index} has shape {list(value.shape)}"
    return None
