"""Resumable training state: what goes into `checkpoints/last.pt` and how a run picks it up.

A file there is checked before anything of it is used: one that is damaged or not a ganforge
training checkpoint is set aside like a replaced training (`set_aside`) and the run starts
fresh, so that it cannot fail every rerun; the warning names the file and what was expected.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.io import torch_save
from ganforge.models.checkpoint import (
    CheckpointError,
    UndecodableFile,
    describe,
    shape_problems,
    unpickle,
)

log = logging.getLogger(__name__)

FORMAT = "ganforge-train-v1"
LAST_CHECKPOINT = "last.pt"
# A checkpoint that a fresh run would overwrite (another configuration's, or one that cannot
# be read) is kept under this name until the new run finishes (see set_aside / drop_replaced).
REPLACED_CHECKPOINT = "replaced-{step}.pt"
UNREADABLE = "unreadable"  # the {step} of a set-aside file that could not be read

# key -> (the types its value may have, what it should be): what `Checkpointing.state_dict`
# writes. Checked before use, so that a foreign file is one warning, not an AttributeError.
STATE_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "format": ((str,), f"the format name {FORMAT!r}"),
    "spec": ((dict,), "the model's spec (a dict)"),
    "config": ((dict,), "the training options (a dict)"),
    "seed": ((int,), "the seed (an int)"),
    "dataset_hash": ((str, type(None)), "the data's hash (a string or None)"),
    "world_size": ((int,), "the number of processes (an int)"),
    "step": ((int,), "the step reached (an int)"),
    "cursor": ((int,), "the data cursor (an int)"),
    "epoch": ((int,), "the epoch (an int)"),
    "generator": ((dict,), "G's weights (a dict of tensors)"),
    "generator_ema": ((dict, type(None)), "the EMA weights (a dict of tensors, or None)"),
    "discriminator": ((dict,), "D's weights (a dict of tensors)"),
    "opt_g": ((dict,), "G's optimizer state (a dict)"),
    "opt_d": ((dict,), "D's optimizer state (a dict)"),
    "scaler_g": ((dict, type(None)), "G's loss-scaler state (a dict or None)"),
    "scaler_d": ((dict, type(None)), "D's loss-scaler state (a dict or None)"),
    "rng": ((list,), "the RNG states, one per process (a list of dicts)"),
    "history": ((list,), "the log rows (a list of dicts)"),
    "callbacks": ((dict,), "the callbacks' states (a dict of dicts)"),
    "elapsed": ((int, float), "the training seconds (a number)"),
}


class UnusableCheckpoint(CheckpointError):
    """The file's content is damaged or not a ganforge training state (`.problem` says how)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path} is not a usable ganforge training checkpoint ({problem})")
        self.path, self.problem = path, problem


# A checkpoint continues a run only when the result equals an uninterrupted run under the
# current options. These options change neither the weights nor the batches drawn:
HARMLESS_FIELDS = frozenset(
    {"log_every", "checkpoint_every", "num_sample_images", "device", "compile"}
)
# and these only say where to stop: the data order, noise and optimizer steps up to any step
# do not depend on them (except instance noise and the learning-rate decay, which are laid out
# over the run's length).
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


def _free_name(checkpoint_dir: Path, step: int | str) -> Path:
    """`replaced-<step>.pt`, or `replaced-<step>-<n>.pt` when that name is taken: a set-aside
    file is never overwritten by another."""
    kept = checkpoint_dir / REPLACED_CHECKPOINT.format(step=step)
    n = 2
    while kept.exists():
        kept = checkpoint_dir / REPLACED_CHECKPOINT.format(step=f"{step}-{n}")
        n += 1
    return kept


def set_aside(checkpoint_dir: Path, state: dict[str, Any], reasons: list[str]) -> Path | None:
    """Before a fresh run overwrites `last.pt` of another configuration, keep it aside.

    Renames it to `replaced-<step>.pt` and says in the log which training it holds and how
    to keep it; `drop_replaced` removes it once the new run has finished.
    """
    last = Path(checkpoint_dir) / LAST_CHECKPOINT
    step = int(state.get("step", 0))
    if not last.is_file():
        return None
    kept = _free_name(Path(checkpoint_dir), step)
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
            "the previous training (step %d%s) is kept as %s until this experiment finishes",
            step,
            of_run,
            kept,
        )
        return kept
    # The reasons were just logged (`resume`): this says what happens to the old training.
    log.warning(
        "the previous training (step %d%s) is kept as %s until this run finishes, then "
        "deleted. To keep it, copy that file elsewhere now; to continue it instead, undo the "
        "change and rename it back to %s. (`dvc exp run -S key=value` runs a changed option "
        "as an experiment, beside the workspace's results.)",
        step,
        of_run,
        kept,
        last,
    )
    return kept


def set_aside_unusable(err: UnusableCheckpoint) -> Path | None:
    """Keep a checkpoint that cannot be resumed as `replaced-unreadable.pt`, and say so.

    The run then starts fresh: a damaged file must not stop every rerun, and it is kept, not
    overwritten, until the new run finishes, in case it matters to someone.
    """
    if not err.path.is_file():
        return None
    kept = _free_name(err.path.parent, UNREADABLE)
    os.replace(err.path, kept)
    log.warning(
        "%s: starting fresh. The file is kept as %s until this run finishes, then deleted; "
        "to keep it, copy it elsewhere now.",
        err,
        kept,
    )
    return kept


def drop_replaced(checkpoint_dir: Path) -> list[Path]:
    """Remove the set-aside checkpoints: call once the run that replaced them has finished."""
    dropped = []
    for path in sorted(Path(checkpoint_dir).glob(REPLACED_CHECKPOINT.format(step="*"))):
        path.unlink(missing_ok=True)
        dropped.append(path)
        log.info("removed %s: the run that replaced it has finished", path)
    return dropped


def load_state(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, checked; None when there is none.

    Raises `UnusableCheckpoint` when the content is damaged or not a ganforge training state
    (the caller sets it aside and starts fresh), and `CheckpointError` when the file cannot be
    read at all (permissions, a disk error: starting fresh would not be the fix).
    """
    if not path.is_file():
        return None
    try:
        state = unpickle(path)
    except UndecodableFile as err:
        raise UnusableCheckpoint(path, err.detail) from None
    except OSError as err:
        raise CheckpointError(
            f"cannot read {path} ({err.strerror or err}): make it readable, or move it away "
            "to start training afresh"
        ) from None
    problem = state_problems(state)
    if problem is not None:
        raise UnusableCheckpoint(path, problem)
    return state


def state_problems(state: Any) -> str | None:
    """What makes `state` no ganforge training checkpoint (first problem), or None."""
    problem = shape_problems(state, STATE_KEYS, frozenset())
    if problem is not None:
        return problem
    if state["format"] != FORMAT:
        return f"format {state['format'][:40]!r}; this ganforge reads {FORMAT!r}"
    for key in ("history", "rng"):
        bad = next((v for v in state[key] if not isinstance(v, dict)), None)
        if bad is not None:
            return f"{key!r} holds {describe(bad)}; expected {STATE_KEYS[key][1]}"
    bad_cb = next((k for k, v in state["callbacks"].items() if not isinstance(v, dict)), None)
    if bad_cb is not None:
        return f"callback state {str(bad_cb)[:40]!r} is {describe(state['callbacks'][bad_cb])}"
    if any(not isinstance(r.get("step"), int) for r in state["history"]):
        return "a row of 'history' has no int 'step'"
    if state["step"] < 0 or state["cursor"] < 0:
        return f"step {state['step']}, cursor {state['cursor']}: negative"
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
        if key in LENGTH_FIELDS and not (config.get("instance_noise") or config.get("lr_decay")):
            continue
        reasons.append(f"{key} changed: {old.get(key)!r} -> {value!r}")
    if state.get("seed") != seed:
        reasons.append(f"seed changed: {state.get('seed')!r} -> {seed!r}")
    if dataset_hash is not None and state.get("dataset_hash") not in (None, dataset_hash):
        reasons.append(f"data changed: hash {state.get('dataset_hash')} -> {dataset_hash}")
    return reasons
