"""Quality judged during training: a validation measure every N steps, the best generator kept,
and a partial-collapse alarm.

`QualityMonitor` is a training callback. Every `every` steps (and at the last step) it draws
`num_samples` samples for a fixed set of latent codes from G (its EMA copy when there is one, in
eval mode), scores them with a `SelectionMeasure` and remembers the weights of the best score:

- images: FID of the domain classifier's features against a fixed subset of the *validation*
  split (`ValidationFID`; the test split is never used for selection);
- ring / grid of Gaussians: high-quality fraction × fraction of modes covered (`ModeQuality`):
  the FID of raw 2-D points cannot see a generator that smears its mass between the modes;
- 1-D Gaussian: Jensen-Shannon divergence to the known N(mean, std²) (`GaussianJSD`).

`monitor_for` makes that choice from what `prepare` recorded about the data (its meta);
`keep_best` puts the best snapshot into a finished run's modules.

From the same samples it keeps a class (or mode) histogram of the samples that look like data
(inside the validation features' k-NN manifold; within 3σ of a mode) and warns when some classes
get less than a quarter of their share of the data, i.e. partial mode collapse. An untrained
generator, whose blobs a classifier confidently lumps into one class, is not an alarm: its
samples do not look like data, and the alarm also waits out a warm-up.

The monitor draws from its own seeded CPU generator and changes no module state, so a run that
uses it trains exactly as one that does not; its state (curve, best score and weights, alarm)
goes into the trainer's checkpoint, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ganforge.data.scaling import to_uint8
from ganforge.metrics.features import ClassifierFeatureNet
from ganforge.metrics.fid import min_fid_samples
from ganforge.training.measures import (
    STARVED_SHARE,
    GaussianJSD,
    ModeQuality,
    SelectionMeasure,
    ValidationFID,
    starved_classes,
)
from ganforge.training.trainer import Callback, GANTrainer, TrainResult

if TYPE_CHECKING:
    from ganforge.classifier import DomainClassifier

log = logging.getLogger(__name__)


class QualityMonitor(Callback):
    """Scores G every `every` steps with `measure`, keeps the best weights, raises collapse alarms.

    `keep="best"` snapshots G, its EMA copy and D whenever the score improves (`keep="last"` only
    records the best step). `prior` is the data's class (mode) distribution [K]; without it, or
    when the measure gives no histogram, there is no collapse alarm. The alarm is armed after
    `warmup` of the run's steps and judges only when at least `min_judged` (default
    max(100, 10 K)) samples look like data; it fires once per episode, after `patience`
    consecutive evaluations with starved classes.
    """

    state_key = "quality_monitor"

    def __init__(
        self,
        measure: SelectionMeasure,
        every: int,
        num_samples: int,
        keep: str = "best",
        prior: torch.Tensor | None = None,
        seed: int = 0,
        warmup: float = 0.25,
        patience: int = 2,
        batch_size: int = 500,
        class_names: Sequence[str] = (),
        min_judged: int | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every = {every}: evaluate at least every step (>= 1)")
        if keep not in ("best", "last"):
            raise ValueError(f"keep = {keep!r}: use 'best' or 'last'")
        if isinstance(measure, ValidationFID) and num_samples < min_fid_samples(
            measure.net.feature_dim
        ):
            raise ValueError(
                f"train.fid_samples = {num_samples} is too small for a full-rank covariance of "
                f"{measure.net.feature_dim}-d features: use at least "
                f"{min_fid_samples(measure.net.feature_dim)}"
            )
        self.measure, self.every, self.num_samples, self.keep = measure, every, num_samples, keep
        self.prior = prior
        self.seed, self.warmup, self.patience, self.batch_size = seed, warmup, patience, batch_size
        self.class_names = list(class_names)
        k = len(prior) if prior is not None else 0
        # Enough samples that a class's quarter share is not a matter of luck: with 10 per
        # class expected, < 2.5 happens by chance to ~0.2 % of classes.
        self.min_judged = min_judged if min_judged is not None else max(100, 10 * k)
        self.curve: list[tuple[int, float]] = []
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, Any] | None = None
        self.warnings: list[str] = []
        self.seconds: list[float] = []
        self._starved_run = 0
        self._last_scored = 0

    # ----------------------------------------------------------------- the hook
    def on_log(self, trainer: GANTrainer, row: dict[str, float]) -> None:
        step = int(row["step"])
        due = step // self.every > self._last_scored // self.every
        if not (due or step >= trainer.total_steps) or step == self._last_scored:
            return
        self._last_scored = step
        value, hist = self.score(trainer)
        row[self.measure.column] = value
        self.curve.append((step, value))
        if self.measure.is_better(value, self.best_value):
            self.best_value, self.best_step = value, step
            if self.keep == "best":
                self.best_state = _snapshot(trainer)
        if hist is not None and self.prior is not None:
            self._check_collapse(step, trainer.total_steps, hist, self.prior)

    @torch.no_grad()
    def score(self, trainer: GANTrainer) -> tuple[float, torch.Tensor | None]:
        """The measure on `num_samples` samples of G (EMA when kept) for the monitor's fixed z."""
        start = time.perf_counter()
        samples = self.generate(trainer)
        value, hist = self.measure(samples)
        self.seconds.append(time.perf_counter() - start)
        log.info("step %d: %s = %.3f", trainer.step, self.measure.column, value)
        return value, hist

    @torch.no_grad()
    def generate(self, trainer: GANTrainer) -> torch.Tensor:
        """Samples for fixed z (and labels, for a conditional G) drawn from the monitor's seed."""
        spec = trainer.spec
        gen = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.num_samples, spec.nz, generator=gen)
        labels = None
        if spec.conditional:
            weights = self.prior if self.prior is not None else torch.ones(spec.num_classes)
            labels = torch.multinomial(weights.double(), self.num_samples, True, generator=gen)
        module = trainer.ema.module if trainer.ema is not None else trainer.g_core
        was_training = module.training
        module.eval()
        try:
            parts = []
            for i in range(0, self.num_samples, self.batch_size):
                y = (
                    labels[i : i + self.batch_size].to(trainer.device)
                    if labels is not None
                    else None
                )
                out = module(z[i : i + self.batch_size].to(trainer.device), y).float().cpu()
                parts.append(to_uint8(out) if spec.is_image else out)
        finally:
            module.train(was_training)
        return torch.cat(parts)

    def _check_collapse(
        self, step: int, total: int, hist: torch.Tensor, prior: torch.Tensor
    ) -> None:
        judged = int(hist.sum())
        armed = step >= self.warmup * total and judged >= self.min_judged
        starved = starved_classes(hist, prior) if armed else []
        self._starved_run = self._starved_run + 1 if starved else 0
        if self._starved_run == self.patience:
            names = [self.class_names[k] if k < len(self.class_names) else str(k) for k in starved]
            message = (
                f"step {step}: partial mode collapse: {len(starved)} of {len(hist)} classes/modes "
                f"({', '.join(names)}) get less than {STARVED_SHARE:g} of their share of the data "
                f"among the {judged} of {self.num_samples} samples that look like data"
            )
            self.warnings.append(message)
            log.warning(message)

    # ----------------------------------------------------------------- results, checkpoints
    def best_weights(self) -> dict[str, Any] | None:
        """State dicts of G, EMA (or None) and D at the best step (None with keep='last')."""
        return self.best_state

    def mean_seconds(self) -> float | None:
        """Mean wall time of one evaluation (generation + measure) in this session."""
        return sum(self.seconds) / len(self.seconds) if self.seconds else None

    def state_dict(self) -> dict[str, Any]:
        """All that a resumed run needs to continue the curve, the best snapshot and the alarm."""
        return {
            "curve": [[s, v] for s, v in self.curve],
            "best_value": self.best_value,
            "best_step": self.best_step,
            "best_state": self.best_state,
            "warnings": list(self.warnings),
            "starved_run": self._starved_run,
            "last_scored": self._last_scored,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.curve = [(int(s), float(v)) for s, v in state.get("curve", [])]
        self.best_value, self.best_step = state.get("best_value"), state.get("best_step")
        self.best_state = state.get("best_state")
        self.warnings = list(state.get("warnings", []))
        self._starved_run = int(state.get("starved_run", 0))
        self._last_scored = int(state.get("last_scored", 0))


def needs_feature_net(meta: Mapping[str, Any]) -> bool:
    """Whether the validation measure of data described by `meta` (a prepared store's meta) is
    a FID, for which `monitor_for` needs a domain classifier and the validation images: images
    do; the 1-D Gaussian and the mixtures of Gaussians have measures of their own."""
    return meta.get("dataset") != "gaussian_1d" and not (meta.get("modes") and meta.get("mode_std"))


def monitor_for(
    meta: Mapping[str, Any],
    classifier: DomainClassifier | None,
    val_images: torch.Tensor | None,
    *,
    every: int,
    num_samples: int,
    keep: str = "best",
    seed: int = 0,
    labels: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> QualityMonitor:
    """The validation monitor for data described by `meta` (a prepared store's meta).

    The measure follows from the data: JSD to the known N(mean, std²) for the 1-D Gaussian,
    `ModeQuality` for a ring or grid of Gaussians (uniform prior over the modes), else the FID
    of `classifier`'s features (a `DomainClassifier`) against `val_images` (both needed then,
    see `needs_feature_net`), whose class prior for the collapse alarm comes from `labels`
    (the training labels) when given. `seed` picks the fixed validation subset (at most
    `num_samples` images); the monitor's latent codes come from `seed + 2`.
    """
    prior = None
    if meta.get("dataset") == "gaussian_1d":
        measure: SelectionMeasure = GaussianJSD(meta["mean"], meta["std"])
    elif not needs_feature_net(meta):
        measure = ModeQuality(meta["modes"], float(meta["mode_std"]))
        prior = torch.ones(len(meta["modes"]))
    elif classifier is None or val_images is None:
        raise ValueError(
            "a validation FID needs the domain classifier and the validation images: "
            "train the classifier first, or turn the validation score off"
        )
    else:
        net = ClassifierFeatureNet(classifier)
        measure = ValidationFID(net, val_images, num_samples, seed, 500, device)
        if labels is not None:
            prior = torch.bincount(labels, minlength=net.num_classes)
    return QualityMonitor(
        measure,
        every,
        num_samples,
        keep,
        prior,
        seed=seed + 2,
        class_names=meta.get("classes") or (),
    )


def keep_best(result: TrainResult, monitor: QualityMonitor | None) -> dict[str, Any]:
    """Load the best snapshot into the result's modules when the monitor keeps the best.

    Returns what a run records about the choice: which generator was kept, its step, the best
    validation score and its step, and what one evaluation cost.
    """
    info: dict[str, Any] = {"kept": "last", "kept_step": result.step}
    if monitor is None:
        info["quality_measure"] = None
        return info
    column = monitor.measure.column
    seconds = monitor.mean_seconds()
    info.update(
        {
            "quality_measure": column,
            "best_step": monitor.best_step,
            f"best_{column}": monitor.best_value,
            f"last_{column}": monitor.curve[-1][1] if monitor.curve else None,
            "quality_evaluations": len(monitor.curve),
            "quality_seconds_per_evaluation": round(seconds, 3) if seconds is not None else None,
        }
    )
    best = monitor.best_weights()
    if monitor.keep == "best" and best is not None:
        result.generator.load_state_dict(best["generator"])
        if result.ema is not None and best["generator_ema"] is not None:
            result.ema.load_state_dict(best["generator_ema"])
        result.discriminator.load_state_dict(best["discriminator"])
        info.update(kept="best", kept_step=monitor.best_step)
    return info


def _snapshot(trainer: GANTrainer) -> dict[str, Any]:
    def plain(module: torch.nn.Module | None) -> dict[str, torch.Tensor] | None:
        if module is None:
            return None
        return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

    return {
        "generator": plain(trainer.g_core),
        "generator_ema": plain(trainer.ema.module if trainer.ema is not None else None),
        "discriminator": plain(trainer.d_core),
    }
