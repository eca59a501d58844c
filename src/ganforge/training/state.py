"""Resumable training state: what goes into `checkpoints/last.pt` and how a run picks it up."""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.io import torch_save

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
# A checkpoint of another configuration that a fresh run would overwrite is kept under this
# name until the new run passes its step (see set_aside / drop_replaced).
REPLACED_CHECKPOINT = "replaced-{step}.pt"
_REPLACED_RE = re.compile(r"replaced-(\d+)\.pt")

# A checkpoint continues a run only when the result equals an uninterrupted run under the
# current options. These options change neither the weights nor the batches drawn:
HARMLESS_FIELDS = frozenset(
    {"log_every", "checkpoint_every", "num_sample_images", "device", "compile"}
)
# and these only say where to stop: the data order, noise and optimizer steps up to any step
# do not depend on them (except instance noise, which is annealed over the run's length).
LENGTH_FIELDS = frozenset({"kimg", "epochs", "max_steps"})


def capture_rng(device: torch.device) -> dict[str, Any]:
    """Every RNG this process draws from (torch CPU and CUDA, numpy, Python)."""
    np_state = np.random.get_state(legacy=True)
    if not isinstance(np_state, tuple):  # a dict only when the bit generator is not MT19937
        raise TypeError(f"numpy's global RNG is not MT19937: {np_state.get('bit_generator')}")
    kind, keys, pos, has_gauss, cached = np_state
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached"],
        )
    )
    random.setstate(_as_tuple(state["python"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _as_tuple(obj: Any) -> Any:
    return tuple(_as_tuple(o) for o in obj) if isinstance(obj, (list, tuple)) else obj


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training checkpoint atomically (temp file + rename)."""
    torch_save(state, path)


def remove_stale_temp_files(checkpoint_dir: Path) -> list[Path]:
    """Remove the temp files of checkpoint writes that a kill interrupted; returns them.

    `save_state` writes `.<name>.<random>.tmp` beside the checkpoint and renames it: a kill
    in between leaves the temp file behind, in a folder DVC tracks. Call at the start of a
    run, before any write of this run is under way.
    """
    removed = []
    for stale in Path(checkpoint_dir).glob(".*.pt.*.tmp"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    if removed:
        log.info(
            "removed %d temp file(s) of an interrupted checkpoint write in %s",
            len(removed),
            checkpoint_dir,
        )
    return removed


def set_aside(checkpoint_dir: Path, state: dict[str, Any], reasons: list[str]) -> Path | None:
    """Before a fresh run overwrites `last.pt` of another configuration, keep it aside.

    Renames it to `replaced-<step>.pt` and says in the log which training it holds and how
    to keep it; `drop_replaced` removes it once the new run has passed that step.
    """
    last = Path(checkpoint_dir) / LAST_CHECKPOINT
    step = int(state.get("step", 0))
    if not last.is_file():
        return None
    kept = Path(checkpoint_dir) / REPLACED_CHECKPOINT.format(step=step)
    os.replace(last, kept)
    old = state.get("config") or {}
    if old.get("max_steps"):
        length = f"max_steps {old['max_steps']}"
    elif old.get("epochs"):
        length = f"{old['epochs']} epochs"
    else:
        length = f"kimg {old['kimg']}" if old.get("kimg") not in (None, "auto") else ""
    of_run = f" of a run set to {length}" if length else ""
    if os.environ.get("DVC_EXP_NAME"):
        # `dvc exp run` is already how changed options are kept apart: no advice to give.
        log.info(
            "the previous training (step %d%s) is kept as %s until this experiment passes "
            "that step",
            step,
            of_run,
            kept,
        )
        return kept
    # The reasons were just logged (`resume`): this says what happens to the old training.
    log.warning(
        "the previous training (step %d%s) is kept as %s until this run passes step %d, then "
        "deleted. To keep it, copy that file elsewhere now; to continue it instead, undo the "
        "change and rename it back to %s. (`dvc exp run -S key=value` runs a changed option "
        "as an experiment, beside the workspace's results.)",
        step,
        of_run,
        kept,
        step,
        last,
    )
    return kept


def drop_replaced(checkpoint_dir: Path, step: int, finished: bool = False) -> list[Path]:
    """Remove the set-aside checkpoints this run has passed (all of them once it finished)."""
    dropped = []
    for path in Path(checkpoint_dir).glob("replaced-*.pt"):
        match = _REPLACED_RE.fullmatch(path.name)
        if match and (finished or int(match.group(1)) <= step):
            path.unlink(missing_ok=True)
            dropped.append(path)
            log.info("removed %s: this run is now at step %d", path, step)
    return dropped


def load_state(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None when there is none (or it cannot be read)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: start fresh, say why
        log.warning("cannot read checkpoint %s (%s): starting fresh", path, err)
        return None


def restart_reasons(
    state: dict[str, Any],
    spec: dict[str, Any],
    config: dict[str, Any],
    seed: int,
    dataset_hash: str | None,
) -> list[str]:
    """Why `state` cannot be resumed under the current settings (empty: it can)."""
    reasons = []
    if state.get("spec") != spec:
        diff = {k: (state.get("spec", {}).get(k), v) for k, v in spec.items()}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        reasons.append(
            "model changed: " + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())
        )
    old = state.get("config", {})
    for key, value in config.items():
        if key in HARMLESS_FIELDS or old.get(key) == value:
            continue
        if key in LENGTH_FIELDS and not (config.get("instance_noise") or 0):
            continue
        reasons.append(f"{key} changed: {old.get(key)!r} -> {value!r}")
    if state.get("seed") != seed:
        reasons.append(f"seed changed: {state.get('seed')!r} -> {seed!r}")
    if dataset_hash is not None and state.get("dataset_hash") not in (None, dataset_hash):
        reasons.append(f"data changed: hash {state.get('dataset_hash')} -> {dataset_hash}")
    return reasons
