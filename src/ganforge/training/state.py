"""Resumable training state: what goes into `checkpoints/last.pt` and how a run picks it up."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.io import torch_save

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"

# A checkpoint continues a run only when the result equals an uninterrupted run under the
# current options. These options change neither the weights nor the batches drawn:
HARMLESS_FIELDS = frozenset(
    {"log_every", "checkpoint_every", "num_sample_images", "device", "compile"}
)
# and these only say where to stop: the data order, noise and optimizer steps up to any step
# do not depend on them (except instance noise, which is annealed over the run's length).
LENGTH_FIELDS = frozenset({"epochs", "max_steps"})


def capture_rng(device: torch.device) -> dict[str, Any]:
    """Every RNG this process draws from (torch CPU and CUDA, numpy, Python)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
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
