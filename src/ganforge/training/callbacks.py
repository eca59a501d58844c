"""Hooks the loop calls on rank 0: logging, progress, sample grids and health warnings.

The loop knows nothing about MLflow or terminals; whoever runs it passes callbacks. The two
that write outs (`HistoryCSV`, `SampleGrid`) stage them beside their targets and swap them in
when the run finishes: a failed, killed or full-disk run leaves the previous run's history
and grids as they were.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganforge.io import (
    atomic_path,
    disk_full_names,
    is_staging_of,
    remove_stale_staging,
    staging_folder,
    swap_in,
    write_csv,
)
from ganforge.plots import plot_points
from ganforge.training.trainer import Callback, GANTrainer, TrainResult

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
# Written only when some row has them: the validation measure of `QualityMonitor`, then the
# measures of ganforge.lectures.LectureSnapshots: the value of the game, the optimum it is
# measured against, and (toy data) the modes covered and the share of samples near a mode.
QUALITY_COLUMNS = (
    "fid_val",
    "mode_quality_val",
    "jsd_val",
    "value_v",
    "value_at_d_star",
    "jsd_g",
    "modes_covered",
    "hq_share",
)


def write_history_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """The log rows as CSV with the `HISTORY_COLUMNS` (and the `QUALITY_COLUMNS` that some row
    has: rows without a value leave the cell empty), atomically."""
    # fid_val always has its column: dvc.yaml's fid_curve plot reads it (empty when unscored).
    columns = HISTORY_COLUMNS + tuple(
        c for c in QUALITY_COLUMNS if c == "fid_val" or any(c in r for r in rows)
    )
    write_csv(path, columns, rows)


class HistoryCSV(Callback):
    """The whole history (restored rows included) as CSV at `path`, staged until the run ends.

    Rewritten at each log step to a staged copy beside `path` (`.<name>.<random>.staged/`),
    which replaces `path` when the run finishes; a failed or killed run leaves `path` as it
    was. A resumed run writes its rows again from the checkpoint's history, so the staged copy
    of a killed session is not needed and is removed as stale. With `defer_commit`, the
    finished run's file waits for `commit()` (say, until the model it describes is saved).
    """

    def __init__(self, path: str | Path, defer_commit: bool = False) -> None:
        self.path = Path(path)
        self.defer_commit = defer_commit
        self.staged: Path | None = None  # the file rows go to during the run
        self._written: list[dict[str, Any]] | None = None

    def on_fit_start(self, trainer: GANTrainer) -> None:
        remove_stale_staging(self.path)
        self.staged = staging_folder(self.path) / self.path.name
        # Now, not only at the end: a run resumed at its last step logs no row, and the one
        # write at the end should find nothing left to write (see on_fit_end).
        self._write(trainer.history)

    def on_log(self, trainer: GANTrainer, row: dict[str, float]) -> None:
        self._write(trainer.history)

    def on_fit_end(self, trainer: GANTrainer, result: TrainResult) -> None:
        if self._written != trainer.history:  # a row changed after it was logged
            self._write(trainer.history)
        if not self.defer_commit:
            self.commit()

    def commit(self) -> None:
        """Move the finished run's history into `path` (a rename; no-op when none is staged)."""
        if self.staged is None or not self.staged.is_file():
            return
        with disk_full_names(self.path):  # a rename; only a directory that must grow needs space
            os.replace(self.staged, self.path)
        shutil.rmtree(self.staged.parent, ignore_errors=True)
        self.staged = None

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if self.staged is None:  # used without on_fit_start: stage now
            self.staged = staging_folder(self.path) / self.path.name
        with disk_full_names(self.path):
            write_history_csv(self.staged, rows)
        self._written = [dict(r) for r in rows]


class SampleGrid(Callback):
    """A grid of G's samples for the fixed z, one PNG per epoch: `<dir>/epoch_XXXX.png`.

    The grids are drawn into a staging folder beside `<dir>` (`.<name>.<random>.staged/`)
    that replaces `<dir>` when the run finishes, so a failed, killed or full-disk run leaves
    the previous run's grids in place. The staging folder's name is saved in the checkpoint
    (`state_key`): a resumed run draws on into it and keeps the grids of the epochs before
    the kill; a fresh run removes stale ones and starts an empty folder. At the end of the run
    only a few grids stay (`keep_epochs`: the first, `middle` evenly spaced, the best
    validation score's and the last), so that the plots page shows how training went in a
    handful of panels rather than one per epoch. Files in `<dir>` that are not grids are kept.
    With `defer_commit`, the finished run's folder waits for `commit()`.
    """

    state_key = "sample_grid"

    def __init__(
        self,
        directory: str | Path,
        nrow: int | None = None,
        middle: int = 3,
        defer_commit: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.nrow = nrow
        self.middle = middle
        self.defer_commit = defer_commit
        self.paths: list[Path] = []  # the grids drawn, where they are now
        self.staging: Path | None = None
        self._resume_in: Path | None = None  # the staging folder a checkpoint names

    def state_dict(self) -> dict[str, Any]:
        return {"staging": self.staging.name} if self.staging is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        name = state.get("staging")
        if isinstance(name, str) and is_staging_of(self.directory, name):
            self._resume_in = self.directory.parent / name
        else:
            self._resume_in = None

    def on_fit_start(self, trainer: GANTrainer) -> None:
        resumed = trainer.resumed_from is not None
        keep = self._resume_in if resumed else None
        if keep is not None and not (keep.is_dir() and not keep.is_symlink()):
            keep = None
        remove_stale_staging(self.directory, keep=keep)
        self.paths = []
        if keep is not None:
            self.staging = keep
            return
        self.staging = staging_folder(self.directory)
        if resumed and self.directory.is_dir():
            # Its earlier sessions finished and were swapped in (a run trained on): their grids
            # are the ones in place. Hard links need no space; another file system gets copies.
            for grid in self.directory.glob("epoch_*.png"):
                with disk_full_names(grid):
                    _link_or_copy(grid, self.staging / grid.name)

    def on_epoch_end(self, trainer: GANTrainer, epoch: int) -> None:
        from torchvision.utils import save_image

        samples = trainer.fixed_samples()
        name = f"epoch_{epoch:04d}.png"
        if self.staging is None:  # used without on_fit_start: stage now
            self.staging = staging_folder(self.directory)
        path = self.staging / name
        with disk_full_names(self.directory / name):
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
        if self.staging is None:
            return
        grids = {_epoch_of(p): p for p in self.staging.glob("epoch_*.png")}
        grids.pop(None, None)
        best = None
        step = best_logged_step(result.history)
        if step is not None and result.step > 0 and result.epoch > 0:
            best = math.ceil(step / (result.step / result.epoch))  # the grid at or after it
        keep = keep_epochs(sorted(grids), best, self.middle)  # type: ignore[arg-type]
        for epoch, path in grids.items():
            if epoch not in keep:
                path.unlink(missing_ok=True)
        self.paths = [p for p in self.paths if p.exists()]
        if not self.defer_commit:
            self.commit()

    def commit(self) -> None:
        """Swap the finished run's grids in for `<dir>` (renames; no-op when none is staged)."""
        if self.staging is None or not self.staging.is_dir():
            return
        with disk_full_names(self.directory):
            swap_in(self.staging, self.directory, own="epoch_*.png")
        self.paths = [self.directory / p.name for p in self.paths]
        self.staging = None


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


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
