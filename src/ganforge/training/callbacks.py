"""Hooks the loop calls on rank 0: logging, progress, sample grids and health warnings.

The loop knows nothing about MLflow or terminals; whoever runs it passes callbacks.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.io import atomic_path
from ganforge.plots import plot_points

if TYPE_CHECKING:
    from ganforge.training.trainer import GANTrainer, TrainResult

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "step",
    "loss_d",
    "loss_g",
    "d_real",
    "d_fake",
    "grad_norm_g",
    "grad_norm_d",
    "images_per_s",
    "diversity",  # spread of fakes / spread of reals within a batch (mean pairwise distance)
)
# Written only when some row has them: the validation measure of `QualityMonitor`.
QUALITY_COLUMNS = ("fid_val", "mode_quality_val", "jsd_val")


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


def write_history_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """The log rows as CSV with the `HISTORY_COLUMNS` (and the `QUALITY_COLUMNS` that some row
    has: rows without a value leave the cell empty), atomically."""
    # fid_val always has its column: dvc.yaml's fid_curve plot reads it (empty when unscored).
    columns = HISTORY_COLUMNS + tuple(
        c for c in QUALITY_COLUMNS if c == "fid_val" or any(c in r for r in rows)
    )
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class HistoryCSV(Callback):
    """Rewrites `path` with the whole history (restored rows included) at each log step."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log(self, trainer: GANTrainer, row: dict[str, float]) -> None:
        write_history_csv(self.path, trainer.history)

    def on_fit_end(self, trainer: GANTrainer, result: TrainResult) -> None:
        write_history_csv(self.path, trainer.history)


class SampleGrid(Callback):
    """A grid of G's samples for the fixed z, one PNG per epoch: `<dir>/epoch_XXXX.png`.

    The folder outlives a killed run (a persisted DVC out), so a resumed run keeps the grids
    of the epochs before the kill; a run that starts afresh first removes the old ones. At the
    end of the run only a few grids stay (`keep_epochs`: the first, `middle` evenly spaced,
    the best validation score's and the last), so that the plots page shows how training went
    in a handful of panels rather than one per epoch.
    """

    def __init__(self, directory: str | Path, nrow: int | None = None, middle: int = 3) -> None:
        self.directory = Path(directory)
        self.nrow = nrow
        self.middle = middle
        self.paths: list[Path] = []

    def on_fit_start(self, trainer: GANTrainer) -> None:
        if trainer.resumed_from is None:
            for stale in self.directory.glob("epoch_*.png"):
                stale.unlink()

    def on_epoch_end(self, trainer: GANTrainer, epoch: int) -> None:
        from torchvision.utils import save_image

        samples = trainer.fixed_samples()
        path = self.directory / f"epoch_{epoch:04d}.png"
        if samples.dim() == 4:
            nrow = self.nrow or max(1, int(math.sqrt(samples.shape[0])))
            with atomic_path(path) as tmp:
                save_image(
                    samples, tmp, nrow=nrow, normalize=True, value_range=(-1, 1), format="png"
                )
        elif samples.dim() == 2 and samples.shape[1] in (1, 2):
            plot_points(samples, path, f"epoch {epoch}")
        else:
            return
        self.paths.append(path)

    def on_fit_end(self, trainer: GANTrainer, result: TrainResult) -> None:
        grids = {_epoch_of(p): p for p in self.directory.glob("epoch_*.png")}
        grids.pop(None, None)
        if not grids:
            return
        best = None
        step = best_logged_step(result.history)
        if step is not None and result.step > 0 and result.epoch > 0:
            best = math.ceil(step / (result.step / result.epoch))  # the grid at or after it
        keep = keep_epochs(sorted(grids), best, self.middle)  # type: ignore[arg-type]
        for epoch, path in grids.items():
            if epoch not in keep:
                path.unlink(missing_ok=True)
        self.paths = [p for p in self.paths if p.exists()]


def _epoch_of(path: Path) -> int | None:
    digits = path.stem.removeprefix("epoch_")
    return int(digits) if digits.isdigit() else None


def keep_epochs(epochs: Sequence[int], best: int | None, middle: int = 3) -> set[int]:
    """The epochs whose grids stay: first, `middle` evenly spaced, nearest to `best`, last."""
    if not epochs:
        return set()
    keep = {epochs[0], epochs[-1]}
    for i in range(1, middle + 1):
        keep.add(epochs[round(i * (len(epochs) - 1) / (middle + 1))])
    if best is not None:
        keep.add(min(epochs, key=lambda e: (abs(e - best), -e)))
    return keep


def best_logged_step(history: Sequence[dict[str, Any]]) -> int | None:
    """The step of the best validation score in the log rows (a tie: the later step)."""
    for column, sign in (("fid_val", 1.0), ("jsd_val", 1.0), ("mode_quality_val", -1.0)):
        scored = [
            (sign * float(r[column]), -int(r["step"]))
            for r in history
            if isinstance(r.get(column), int | float) and math.isfinite(float(r[column]))
        ]
        if scored:
            return -min(scored)[1]
    return None


class HealthMonitor(Callback):
    """Warns when D wins (D(G(z)) -> 0, G's gradient fading) or when G collapses.

    Collapse is suspected when the spread of a batch of fakes (mean pairwise distance) falls
    below `collapse_ratio` times that of a real batch, after `warmup` of the run's steps: an
    untrained G draws nearly the same output for every z, which is no collapse (partial collapse,
    which this total-collapse check misses, is `QualityMonitor`'s alarm). Each warning fires once
    per episode: after `patience` consecutive log steps in the bad state, and again only after
    recovery.
    """

    def __init__(
        self,
        d_fake_floor: float = 0.01,
        vanishing_grad: float = 1e-3,
        collapse_ratio: float = 0.1,
        patience: int = 5,
        warmup: float = 0.25,
    ) -> None:
        self.d_fake_floor, self.vanishing_grad = d_fake_floor, vanishing_grad
        self.collapse_ratio, self.patience, self.warmup = collapse_ratio, patience, warmup
        self._d_wins = self._collapse = 0
        self.warnings: list[str] = []

    def on_log(self, trainer: GANTrainer, row: dict[str, float]) -> None:
        # D ahead of G is common early on; it is a problem once G's gradient fades with it
        # (the saturating minimax loss does that by design), so only then is it a warning.
        d_wins = row["d_fake"] < self.d_fake_floor
        fading = row["grad_norm_g"] < self.vanishing_grad
        self._d_wins = self._d_wins + 1 if d_wins and fading else 0
        if self._d_wins == self.patience:
            minimax = getattr(getattr(trainer, "config", None), "loss", None) == "minimax"
            self._warn(
                f"step {row['step']}: D wins: D(G(z)) = {row['d_fake']:.3g} and G's gradient "
                f"norm {row['grad_norm_g']:.3g} for {self.patience} log steps (vanishing: G "
                "has stopped learning); try "
                + ("loss: non_saturating, " if minimax else "")
                + "a lower lr_d, label_smoothing or instance_noise"
            )
        diversity = row.get("diversity", math.nan)
        armed = row["step"] >= self.warmup * getattr(trainer, "total_steps", 0)
        collapsed = armed and math.isfinite(diversity) and diversity < self.collapse_ratio
        self._collapse = self._collapse + 1 if collapsed else 0
        if self._collapse == self.patience:
            self._warn(
                f"step {row['step']}: mode collapse suspected: fakes spread {diversity:.3g}x "
                "as much as real data within a batch"
            )

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning(message)
