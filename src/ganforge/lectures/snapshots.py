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
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ganforge.data.scaling import to_model_range
from ganforge.io import (
    atomic_path,
    disk_full_names,
    remove_stale_staging,
    staging_folder,
    swap_in,
)
from ganforge.lectures.figures import (
    DensityPanel,
    SurfacePanel,
    figure1_strip,
    saturation_figure,
    save_png,
    surface_strip,
)
from ganforge.lectures.theory import (
    OBJECTIVES,
    ToyDistribution,
    binned_jsd,
    game_value_at_optimum,
    generator_logit_gradients,
    optimal_discriminator,
)
from ganforge.losses import LOG4, generator_loss, value_function
from ganforge.metrics.toy import jensen_shannon_1d, mode_coverage
from ganforge.models.latent_class import LatentClassGenerator
from ganforge.training.callbacks import Callback

if TYPE_CHECKING:
    from ganforge.training.trainer import GANTrainer, TrainResult

log = logging.getLogger(__name__)

VALUE_COLUMNS = ("step", "value_v", "value_at_d_star", "jsd", "minus_log_4")
MODE_COLUMNS = ("step", "modes_covered", "num_modes", "hq_share")
DENSITY_COLUMNS = ("x", "p_data", "p_g", "d", "d_star")
SATURATION_COLUMNS = ("step", "d_fake") + tuple(
    f"grad_{at}_{kind}" for at in ("logit", "x") for kind in OBJECTIVES
)
# The keys added to the training row (and so to MLflow) when measured.
ROW_KEYS = ("value_v", "value_at_d_star", "jsd_g", "modes_covered", "hq_share")
FIGURES = ("figure1.png", "modes.png", "saturation.png")


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
        self._batch: _Batch | None = None
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
            self._batch = self._fixed_batch(trainer)
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
                self._write_csvs(self.staging)
                self._draw(self.staging / "figures")
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
        with _eval_mode(trainer.g_core, trainer.d_core), torch.no_grad():
            fake = _generate(trainer, batch)
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
        self._saturation(trainer, step)
        if self.toy is not None:
            with _eval_mode(trainer.g_core, trainer.d_core), torch.no_grad():
                fake = _generate(trainer, self._need_batch()).float()
                panel = (
                    self._density_panel(trainer, fake, step, scalars)
                    if self.toy.dim == 1
                    else self._surface_panel(trainer, fake, step, scalars)
                )
            self.panels.append(panel)
        self.done.append(step)

    def _saturation(self, trainer: GANTrainer, step: int) -> None:
        """Per sample: D(G(z)) and |∂ℓ_G/∂logit|, ‖∂ℓ_G/∂G(z)‖ for both G losses, through D."""
        batch = self._need_batch()
        k = _whole_packs(min(self.saturation_samples, len(batch.z)), trainer)
        sub = _Batch(batch.z[:k], None, None, _head(batch.fake_labels, k), _head(batch.g_labels, k))
        with _eval_mode(trainer.g_core, trainer.d_core):
            with torch.no_grad():
                fake = _generate(trainer, sub).float()
            fake.requires_grad_(True)
            logits = trainer.d_core(fake, sub.fake_labels).float().flatten()
            per_logit = generator_logit_gradients(logits)
            per_sample: dict[str, torch.Tensor] = {}
            for kind in OBJECTIVES:
                if logits.numel() != len(fake):  # PacGAN: one logit per pack, no per-sample x
                    per_sample[kind] = torch.full((logits.numel(),), math.nan)
                    continue
                loss = generator_loss(logits, kind) * logits.numel()
                (grad,) = torch.autograd.grad(loss, fake, retain_graph=True)
                per_sample[kind] = grad.detach().flatten(1).norm(dim=1).double().cpu()
        d_fake = torch.sigmoid(logits.detach().double()).cpu()
        for i in range(logits.numel()):
            row = {"step": float(step), "d_fake": float(d_fake[i])}
            for kind in OBJECTIVES:
                row[f"grad_logit_{kind}"] = float(per_logit[kind][i])
                row[f"grad_x_{kind}"] = float(per_sample[kind][i])
            self.saturation_rows.append(row)

    def _density_panel(
        self, trainer: GANTrainer, fake: torch.Tensor, step: int, scalars: Mapping[str, float]
    ) -> dict[str, Any]:
        """Figure 1's curves on a grid over the data and G's samples."""
        from scipy.stats import gaussian_kde

        assert self.toy is not None
        x_fake = fake.cpu().double().flatten().numpy()
        mean, std = float(self.toy.centres[0, 0]), self.toy.std
        lo = min(mean - 4 * std, float(np.quantile(x_fake, 0.005)))
        hi = max(mean + 4 * std, float(np.quantile(x_fake, 0.995)))
        lo, hi = max(lo, mean - 40 * std), min(hi, mean + 40 * std)  # a diverged G: stay near
        pad = 0.05 * (hi - lo)
        x = np.linspace(lo - pad, hi + pad, self.grid_wanted or 400)
        if np.ptp(x_fake) == 0:  # a collapsed G: a point mass, the KDE needs some spread
            x_fake = x_fake + np.random.default_rng(0).normal(0, 1e-3 * std, x_fake.shape)
        p_g = gaussian_kde(x_fake)(x)
        p_data = self.toy.pdf(x[:, None])
        grid = torch.as_tensor(x, dtype=torch.float32, device=trainer.device)[:, None]
        d = _d_on_points(trainer, grid).double().cpu().numpy()
        return _state(DensityPanel(
            step=step, x=x, p_data=p_data, p_g=p_g, d=d,
            d_star=optimal_discriminator(p_data, p_g),
            value_v=scalars.get("value_v", math.nan),
            value_at_d_star=scalars.get("value_at_d_star", math.nan),
        ))  # fmt: skip

    def _surface_panel(
        self, trainer: GANTrainer, fake: torch.Tensor, step: int, scalars: Mapping[str, float]
    ) -> dict[str, Any]:
        """D on a square grid over the modes (and most of G's samples), and G's samples."""
        assert self.toy is not None
        pts = fake.cpu().double().numpy()
        centres = self.toy.centres
        lo, hi = centres.min(axis=0) - 4 * self.toy.std, centres.max(axis=0) + 4 * self.toy.std
        span = float(np.max(hi - lo))
        lo, hi = lo - 0.25 * span, hi + 0.25 * span
        seen_lo, seen_hi = np.quantile(pts, 0.01, axis=0), np.quantile(pts, 0.99, axis=0)
        lo = np.maximum(np.minimum(lo, seen_lo), lo - span)
        hi = np.minimum(np.maximum(hi, seen_hi), hi + span)
        mid, half = (lo + hi) / 2, float(np.max(hi - lo)) / 2
        side = self.grid_wanted or 120
        xs = np.linspace(mid[0] - half, mid[0] + half, side)
        ys = np.linspace(mid[1] - half, mid[1] + half, side)
        gx, gy = np.meshgrid(xs, ys)
        plane = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float32)
        chunks = [_d_on_points(trainer, c.to(trainer.device)).cpu() for c in plane.split(8192)]
        d = torch.cat(chunks).double().numpy().reshape(side, side)
        return _state(SurfacePanel(
            step=step, xs=xs, ys=ys, d=d, fake=pts, centres=centres,
            modes_covered=int(scalars.get("modes_covered", 0)), num_modes=self.toy.num_modes,
            hq_share=float(scalars.get("hq_share", 0.0)),
        ))  # fmt: skip

    # ----------------------------------------------------------------- fixed inputs
    def _fixed_batch(self, trainer: GANTrainer) -> _Batch:
        """Fixed latents and a fixed held-out real batch, from the callback's own generators."""
        spec, device = trainer.spec, trainer.device
        n = self.samples_wanted or (128 if spec.is_image else 1000)
        gen = torch.Generator().manual_seed(self.seed)
        z = torch.randn(n, spec.nz, generator=gen)
        real = real_labels = None
        if self.held_out is not None and len(self.held_out):
            idx = torch.randperm(len(self.held_out), generator=gen)[:n]
            real = self.held_out[idx]
            real = to_model_range(real) if real.dtype == torch.uint8 else real.float()
            if spec.labelled:
                if self.held_out_labels is None:
                    raise ValueError(
                        "the lectures' snapshots: D reads labels (train.labels is not none): "
                        "pass the held-out batch's labels too"
                    )
                real_labels = self.held_out_labels[idx].long()
        elif self.toy is not None:
            rng = np.random.default_rng([self.seed, 1])
            real = torch.from_numpy(self.toy.sample(n, rng))
        n = _whole_packs(min(n, len(real)) if real is not None else n, trainer)
        z = z[:n]
        if real is not None:
            real = real[:n]
            real_labels = real_labels[:n] if real_labels is not None else None
        g_labels = fake_labels = None
        if isinstance(trainer.g_core, LatentClassGenerator):  # G draws its class from z
            fake_labels = trainer.g_core.classes(z.to(device)).cpu()
        elif spec.conditional:  # as in training: the fakes carry the real batch's labels
            if real_labels is not None:
                g_labels = fake_labels = real_labels[:n]
            else:
                weights = torch.tensor(spec.class_prior or [1.0] * spec.num_classes)
                g_labels = fake_labels = torch.multinomial(weights.double(), n, True, generator=gen)
        return _Batch(
            z=z.to(device),
            real=real.to(device) if real is not None else None,
            real_labels=real_labels.to(device) if real_labels is not None else None,
            fake_labels=fake_labels.to(device) if fake_labels is not None else None,
            g_labels=g_labels.to(device) if g_labels is not None else None,
        )

    def _need_batch(self) -> _Batch:
        if self._batch is None:
            raise RuntimeError("LectureSnapshots: on_fit_start was not called")
        return self._batch

    # ----------------------------------------------------------------- files
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

    def _write_csvs(self, folder: Path) -> None:
        _write_csv(folder / "value.csv", VALUE_COLUMNS, self.value_rows)
        _write_csv(folder / "modes.csv", MODE_COLUMNS, self.mode_rows)
        _write_csv(folder / "saturation.csv", SATURATION_COLUMNS, self.saturation_rows)
        densities: list[dict[str, float]] = []
        if self.toy is not None and self.toy.dim == 1 and self.panels:
            last = self.panels[-1]
            densities = [
                dict(zip(DENSITY_COLUMNS, values, strict=True))
                for values in zip(*(last[c].tolist() for c in DENSITY_COLUMNS), strict=True)
            ]
        _write_csv(folder / "densities.csv", DENSITY_COLUMNS, densities)

    def _draw(self, figures: Path) -> None:
        """The figures, from every snapshot of the run (restored ones included)."""
        if self.saturation_rows:
            save_png(saturation_figure(self.saturation_rows, self._objective), figures / FIGURES[2])
        if self.toy is None or not self.panels:
            return
        if self.toy.dim == 1:
            dens = [DensityPanel(**_arrays(p)) for p in self.panels]
            save_png(figure1_strip(dens), figures / FIGURES[0])
        else:
            surf = [SurfacePanel(**_arrays(p)) for p in self.panels]
            save_png(surface_strip(surf), figures / FIGURES[1])

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


class _Batch:
    """The fixed inputs of every measurement: z, held-out reals, and the labels D / G read."""

    def __init__(
        self,
        z: torch.Tensor,
        real: torch.Tensor | None,
        real_labels: torch.Tensor | None,
        fake_labels: torch.Tensor | None,
        g_labels: torch.Tensor | None,
    ) -> None:
        self.z, self.real, self.real_labels = z, real, real_labels
        self.fake_labels, self.g_labels = fake_labels, g_labels


def _head(t: torch.Tensor | None, k: int) -> torch.Tensor | None:
    return t[:k] if t is not None else None


def _pack(trainer: GANTrainer) -> int:
    return int(getattr(trainer.config, "pack", 1) or 1)


def _whole_packs(n: int, trainer: GANTrainer) -> int:
    """n rounded down to whole PacGAN packs (D judges `pack` samples at a time)."""
    pack = _pack(trainer)
    return max(pack, n - n % pack)


def _d_on_points(trainer: GANTrainer, x: torch.Tensor) -> torch.Tensor:
    """D(x) at each point of `x` [N, D]; a PacGAN D judges a pack of `pack` copies of x."""
    pack = _pack(trainer)
    if pack > 1:
        x = x.repeat_interleave(pack, dim=0)
    return torch.sigmoid(trainer.d_core(x, None).float().flatten())


def _generate(trainer: GANTrainer, batch: _Batch) -> torch.Tensor:
    """G's (the network in training's) samples for the batch's z."""
    return trainer.g_core(batch.z, batch.g_labels)


@contextlib.contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout, BatchNorm's running statistics) for the block; then as before."""
    before = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, was in zip(modules, before, strict=True):
            m.train(was)


def _state(panel: DensityPanel | SurfacePanel) -> dict[str, Any]:
    """A panel as the checkpoint can hold it (tensors and numbers: `weights_only` loading)."""
    return {
        k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in vars(panel).items()
    }


def _arrays(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value
