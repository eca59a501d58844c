"""The lectures, drawn from a run: a training callback that photographs the game as it is played.

`LectureSnapshots` measures the networks in training (G itself, not its EMA copy: D plays
against G) on fixed latents and a fixed held-out batch, and writes under its `directory`:

| file | what | where defined |
|---|---|---|
| `value.csv` | step, V(D, G) on the held-out batch, C(G) = −log 4 + 2·JSD, JSD, −log 4 | points |
| `modes.csv` | step, modes covered, number of modes, high-quality share | 2-D mixtures |
| `densities.csv` | x, p_data, p_g, D, D* of the latest snapshot | 1-D |
| `saturation.csv` | per sample, each snapshot: D(G(z)), both G losses' gradients | all |
| `figures/figure1.png` | Goodfellow et al.'s Figure 1 from this run | 1-D |
| `figures/modes.png` | G's samples over D's decision surface | 2-D mixtures |
| `figures/saturation.png` | the saturation scatter | all |

A CSV whose measure is not defined for the data keeps its header and no rows (so a plot of it
draws nothing rather than a made-up curve); a figure that is not defined is not written.
Images get V on the held-out batch (into the training row, hence MLflow) and the saturation
figure: p_g has no density estimate there.

The scalars (V, JSD, modes) are measured about `rows` times over the run, at log steps; the
pictures at `snapshots` steps: 0, then log-spaced to the last step (`snapshot_steps`). Like the
quality monitor, the callback draws from its own seeded generators and leaves every module as
it found it, so a run with it trains exactly as one without; its rows and panels go into the
checkpoint, so a resumed run draws the same pictures. The files are written once, when the run
finishes, into a staging folder that then replaces `directory` (`ganforge.io.swap_in`): a
failed or killed run leaves the previous run's files as they were (with `defer_commit`, the
folder waits for `commit()`, say until the model it describes is saved).

How the networks are read (the fixed batch, the panels, the saturation rows) is `probes`; the
files' columns and how they are written, `files`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.io import disk_full_names, remove_stale_staging, staging_folder, swap_in
from ganforge.lectures.files import panel_state, write_csvs, write_figures
from ganforge.lectures.probes import (
    Batch,
    density_panel,
    eval_mode,
    fixed_batch,
    generate,
    saturation_rows,
    surface_panel,
)
from ganforge.lectures.theory import ToyDistribution, binned_jsd, game_value_at_optimum
from ganforge.losses import LOG4, value_function
from ganforge.metrics.toy import jensen_shannon_1d, mode_coverage
from ganforge.training.trainer import Callback, GANTrainer, TrainResult

log = logging.getLogger(__name__)

# The keys added to the training row (and so to MLflow) when measured.
ROW_KEYS = ("value_v", "value_at_d_star", "jsd_g", "modes_covered", "hq_share")


def snapshot_steps(total: int, count: int = 6) -> list[int]:
    """The steps of the pictures: 0 (before training), then `count` − 1 steps evenly spaced in
    log(step) from total/256 to `total` (the end), as the paper's panels (a)–(d) go from the
    start of learning to convergence."""
    if count < 2 or total < 1:
        return [0]
    later = np.geomspace(max(1.0, total / 256), total, count - 1) if count > 2 else np.empty(0)
    return sorted({0, total, *(int(round(s)) for s in later)})


class LectureSnapshots(Callback):
    """Records and draws the lectures' ideas from the networks in training (see the module).

    `meta` is the prepared data's meta.json (the toy distribution is read from it; images have
    none); `held_out` [N, ...] are real samples training never sees (the validation split:
    uint8 images or float points) with their `held_out_labels` when D reads labels; toy data
    without them draw a held-out batch from the known distribution. `samples` is the size of
    the fixed batches (default 1000 points, 128 images), `rows` the number of scalar
    measurements over the run (default 200 on points, 20 on images), `grid` the resolution of
    the density curves (1-D) or of D's surface (2-D, per side).
    """

    state_key = "lecture_snapshots"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        meta: Mapping[str, Any] | None = None,
        *,
        held_out: torch.Tensor | None = None,
        held_out_labels: torch.Tensor | None = None,
        snapshots: int = 6,
        rows: int | None = None,
        samples: int | None = None,
        saturation_samples: int = 128,
        grid: int | None = None,
        seed: int = 0,
        defer_commit: bool = False,
    ) -> None:
        if snapshots < 1:
            raise ValueError(f"snapshots = {snapshots}: draw at least one (the start)")
        self.directory = Path(directory)
        self.toy = ToyDistribution.from_meta(meta or {})
        self.held_out, self.held_out_labels = held_out, held_out_labels
        self.snapshots, self.rows_wanted, self.samples_wanted = snapshots, rows, samples
        self.saturation_samples, self.grid_wanted, self.seed = saturation_samples, grid, seed
        self.defer_commit = defer_commit
        self.staging: Path | None = None  # the finished run's files, until `commit()`
        self.value_rows: list[dict[str, float]] = []
        self.mode_rows: list[dict[str, float]] = []
        self.saturation_rows: list[dict[str, float]] = []
        self.panels: list[dict[str, Any]] = []
        self.done: list[int] = []  # snapshot steps taken
        self.seconds = 0.0  # wall time spent here, this session
        self._last_row = -1
        self._schedule: set[int] = set()
        self._every = 1
        self._batch: Batch | None = None
        self._objective = ""

    # ----------------------------------------------------------------- hooks
    def on_fit_start(self, trainer: GANTrainer) -> None:
        with self._timed():
            spec = trainer.spec
            if self.toy is not None and (spec.is_image or spec.sample_shape != (self.toy.dim,)):
                raise ValueError(
                    f"the lectures' snapshots: meta.json describes {self.toy.dim}-D points but "
                    f"the data are {tuple(spec.sample_shape)}: pass the meta.json of these data"
                )
            total = trainer.total_steps
            self._schedule = set(snapshot_steps(total, self.snapshots))
            default_rows = 20 if spec.is_image else 200
            self._every = max(1, math.ceil(total / (self.rows_wanted or default_rows)))
            self._objective = str(getattr(trainer.config, "loss", ""))
            self._batch = fixed_batch(
                trainer, self.toy, self.held_out, self.held_out_labels,
                samples=self.samples_wanted, seed=self.seed,
            )  # fmt: skip
            # Everything is rewritten from the rows and panels (the checkpoint's, on resume):
            # what a killed run staged is not needed.
            remove_stale_staging(self.directory)
            if trainer.step in self._schedule and trainer.step not in self.done:
                self._snapshot(trainer)

    def on_log(self, trainer: GANTrainer, row: dict[str, float]) -> None:
        step = int(row["step"])
        due = step // self._every > self._last_row // self._every or step >= trainer.total_steps
        if not due or step == self._last_row:
            return
        with self._timed():
            scalars = self._measure(trainer, step)
            row.update({k: v for k, v in scalars.items() if k in ROW_KEYS})

    def on_step_end(self, trainer: GANTrainer) -> None:
        if trainer.step in self._schedule and trainer.step not in self.done:
            with self._timed():
                self._snapshot(trainer)

    def on_fit_end(self, trainer: GANTrainer, result: TrainResult) -> None:
        # Drawn once, here: matplotlib's rendering is what the snapshots cost most.
        with self._timed():
            self.staging = staging_folder(self.directory)
            with disk_full_names(self.directory):
                write_csvs(self.staging, self.value_rows, self.mode_rows,
                           self.saturation_rows, self.toy, self.panels)  # fmt: skip
                write_figures(self.staging / "figures", self.saturation_rows, self._objective,
                              self.toy, self.panels)  # fmt: skip
        log.info("lectures' snapshots: %.1f s in this session", self.seconds)
        if not self.defer_commit:
            self.commit()

    def commit(self) -> None:
        """Put the finished run's files in place of `directory` (renames; no-op when none)."""
        if self.staging is None or not self.staging.is_dir():
            return
        with disk_full_names(self.directory):
            swap_in(self.staging, self.directory)
        self.staging = None

    # ----------------------------------------------------------------- measures
    def _measure(self, trainer: GANTrainer, step: int) -> dict[str, float]:
        """V, and on toy data JSD, C(G), modes: one row of value.csv (and modes.csv)."""
        batch = self._need_batch()
        with eval_mode(trainer.g_core, trainer.d_core), torch.no_grad():
            fake = generate(trainer, batch)
            scalars: dict[str, float] = {}
            if batch.real is not None:
                real_logits = trainer.d_core(batch.real, batch.real_labels).float()
                fake_logits = trainer.d_core(fake, batch.fake_labels).float()
                scalars["value_v"] = float(value_function(real_logits, fake_logits))
        self._last_row = step
        if self.toy is None:
            return scalars
        points = fake.detach().float().cpu()
        if self.toy.dim == 1:
            mean, std = float(self.toy.centres[0, 0]), self.toy.std
            jsd = jensen_shannon_1d(points, mean=mean, std=std, grid_size=501)
        else:
            jsd = binned_jsd(points.numpy(), self.toy)
        scalars.update(jsd_g=jsd, value_at_d_star=game_value_at_optimum(jsd))
        self._add_row(self.value_rows, {
            "step": step, "value_v": scalars.get("value_v", math.nan),
            "value_at_d_star": scalars["value_at_d_star"], "jsd": jsd, "minus_log_4": -LOG4,
        })  # fmt: skip
        if self.toy.num_modes > 1:
            cov = mode_coverage(points, self.toy.centres, self.toy.std)
            scalars.update(
                modes_covered=float(cov["modes_covered"]), hq_share=cov["high_quality_fraction"]
            )
            self._add_row(self.mode_rows, {
                "step": step, "modes_covered": cov["modes_covered"],
                "num_modes": cov["num_modes"], "hq_share": cov["high_quality_fraction"],
            })  # fmt: skip
        return scalars

    def _snapshot(self, trainer: GANTrainer) -> None:
        """The pictures at this step: the scalars, the saturation rows and the toy's panel."""
        step = trainer.step
        scalars = self._measure(trainer, step) if self._last_row != step else self._row_at(step)
        batch = self._need_batch()
        self.saturation_rows.extend(saturation_rows(trainer, batch, self.saturation_samples, step))
        if self.toy is not None:
            panel = density_panel if self.toy.dim == 1 else surface_panel
            with eval_mode(trainer.g_core, trainer.d_core), torch.no_grad():
                fake = generate(trainer, batch).float()
                drawn = panel(trainer, self.toy, fake, step, scalars, self.grid_wanted)
            self.panels.append(panel_state(drawn))
        self.done.append(step)

    def _need_batch(self) -> Batch:
        if self._batch is None:
            raise RuntimeError("LectureSnapshots: on_fit_start was not called")
        return self._batch

    # ----------------------------------------------------------------- rows
    @staticmethod
    def _add_row(rows: list[dict[str, float]], row: dict[str, Any]) -> None:
        if rows and rows[-1]["step"] == row["step"]:
            rows[-1] = row
        else:
            rows.append(row)

    def _row_at(self, step: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for rows in (self.value_rows, self.mode_rows):
            if rows and rows[-1]["step"] == step:
                out.update(rows[-1])
        return out

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    # ----------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        """Rows, panels and the steps done: what a resumed run needs to draw the same pictures."""
        return {
            "value_rows": self.value_rows,
            "mode_rows": self.mode_rows,
            "saturation_rows": self.saturation_rows,
            "panels": self.panels,
            "done": list(self.done),
            "last_row": self._last_row,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value_rows = list(state.get("value_rows", []))
        self.mode_rows = list(state.get("mode_rows", []))
        self.saturation_rows = list(state.get("saturation_rows", []))
        self.panels = list(state.get("panels", []))
        self.done = [int(s) for s in state.get("done", [])]
        self._last_row = int(state.get("last_row", -1))
