"""The domain classifier: a small CNN trained on real data, the offline feature net of FID/KID/IS.

Inception features are a poor judge of 32-pixel digits (the FID authors advise against them
there); a classifier trained on the domain itself is the usual stand-in. Its penultimate
activations (`feature_dim` wide) feed FID, KID and precision/recall; its class logits feed the
Inception Score, class coverage and the accuracy of a conditional generator.

The network works at any image size and channel count: 3×3 conv + BatchNorm + ReLU blocks
with stride-2 downsampling (from the first block on, at 16 px and up) until the map is 4×4 or
smaller, one more block there, global average pooling, then
Linear(feature_dim) + ReLU (the features) and Linear(num_classes) (the logits).
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ClassifierConfig
from ganforge.data.scaling import to_model_range
from ganforge.io import torch_save

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
TASKS = ("classes", "rotation")
ROTATIONS = 4  # 0, 90, 180 and 270 degrees
# Mild label smoothing steadies the epoch selection on a small val set (the test accuracy it
# leads to: bench/eval_speed.py, and the classifier stage's metrics); stronger smoothing
# flattens p(y|x) and with it the IS of real data.
LABEL_SMOOTHING = 0.05


class DomainClassifier(nn.Module):
    """images [B, C, H, W] in [-1, 1] (or uint8) -> class logits [B, num_classes].

    `features(x)` gives the penultimate activations [B, feature_dim];
    `features_and_logits(x)` gives both from one forward pass.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        width: int = 32,
        feature_dim: int = 128,
        task: str = "classes",
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        if task not in TASKS:
            raise ValueError(f"unknown classifier task {task!r}: use one of {', '.join(TASKS)}")
        # "classes": the data's labels; "rotation": which of four rotations an unlabelled
        # image was given (Gidaris et al. 2018): its features still judge FID, but its logits
        # are no classes of the data (no Inception Score, no class coverage).
        self.task = task
        self.channels, self.image_size = channels, image_size
        self.num_classes, self.width, self.feature_dim = num_classes, width, feature_dim
        # A stride-2 stem from 16 px up: full-resolution convs cost most and add little here.
        stem_stride = 2 if image_size >= 16 else 1
        layers: list[nn.Module] = [_block(channels, width, stride=stem_stride)]
        size, w_in = -(-image_size // stem_stride), width
        while size > 4:
            w_out = min(w_in * 2, width * 4)
            layers.append(_block(w_in, w_out, stride=2))
            size, w_in = (size + 1) // 2, w_out
        layers.append(_block(w_in, w_in, stride=1))  # one more at the coarsest scale
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(w_in, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)

    def config(self) -> dict[str, Any]:
        """The constructor arguments: enough to rebuild the network from a file."""
        return {
            "task": self.task,
            "channels": self.channels,
            "image_size": self.image_size,
            "num_classes": self.num_classes,
            "width": self.width,
            "feature_dim": self.feature_dim,
        }

    @staticmethod
    def _prepare(x: torch.Tensor) -> torch.Tensor:
        return to_model_range(x) if x.dtype == torch.uint8 else x.float()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(self._prepare(x)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        return feats, self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def rotation_task(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image [N, C, H, W] (square) in its four rotations, and which rotation each got.

    The self-supervised task of unlabelled data (Gidaris et al. 2018): a net that tells the
    rotations apart has learnt the shapes of the domain, so its features can judge FID where
    no labels train a classifier.
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotations need square images [N, C, H, W], got {tuple(images.shape)}")
    turned = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(ROTATIONS)])
    labels = torch.arange(ROTATIONS).repeat_interleave(len(images))
    return turned, labels


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@dataclass
class TrainResult:
    """What training produced: the selected network and how it got there."""

    model: DomainClassifier
    best_epoch: int
    val_accuracy: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _shift_augment(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translations by up to `max_shift` pixels (pad with the background, crop back)."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)  # [B, H]
    cols = (dx[:, None] + torch.arange(w)[None, :]).to(x.device)  # [B, W]
    idx_b = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


@torch.inference_mode()
def predict_logits(
    model: DomainClassifier,
    images: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Class logits of `images` (uint8 or [-1, 1] floats), batched, on the CPU."""
    model.eval()
    out = [
        model(images[i : i + batch_size].to(device)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, model.num_classes)


def accuracy(
    model: DomainClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> float:
    """Top-1 accuracy on (images, labels); NaN for an empty set."""
    if len(images) == 0:
        return float("nan")
    pred = predict_logits(model, images, batch_size, device).argmax(dim=1)
    return (pred == labels.cpu()).float().mean().item()


def train_classifier(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    num_classes: int,
    config: ClassifierConfig,
    val_images: torch.Tensor | None = None,
    val_labels: torch.Tensor | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    task: str = "classes",
) -> TrainResult:
    """Train a DomainClassifier on uint8 images [N, C, H, W] with labels in [0, num_classes).

    `task` is recorded in the network ("rotation": the labels are `rotation_task`'s).

    Adam with weight decay and a cosine learning-rate schedule; small random translations as
    augmentation. With a non-empty validation set the epoch of best validation accuracy is
    kept (early selection); without one, the last epoch. Deterministic for a seed on the CPU.
    """
    _check_training_data(train_images, train_labels, num_classes)
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    _, channels, height, _ = train_images.shape
    model = DomainClassifier(
        channels, height, num_classes, config.width, config.feature_dim, task=task
    )
    model.to(device)
    opt, sched = _optimizer(model, config, len(train_images))
    max_shift = max(1, height // 16)
    val = None
    if val_images is not None and val_labels is not None and len(val_images) > 0:
        val = (val_images, val_labels)

    x_all = to_model_range(train_images)  # float [-1, 1], once
    y_all = train_labels.long()
    best = _Best(epoch=config.epochs)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        row: dict[str, float] = {"epoch": epoch}
        row |= _train_epoch(
            model, opt, sched, x_all, y_all, config.batch_size, max_shift, gen, device
        )
        if val is not None:
            row |= _validate(model, val[0], val[1], device)
            best.consider(model, row, epoch)
        history.append(row)
        log.info("classifier epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items()})
    if best.state is not None:
        model.load_state_dict(best.state)
    model.eval()
    return TrainResult(
        model=model,
        best_epoch=best.epoch,
        val_accuracy=best.accuracy if val is not None else None,
        history=history,
        seconds=time.perf_counter() - start,
    )


def _check_training_data(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    """ValueError naming the problem: images not [N, C, H, W], or a label outside the classes."""
    if images.dim() != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
    if (labels < 0).any() or (labels >= num_classes).any():
        raise ValueError(
            f"labels must lie in [0, {num_classes}); this split has labels "
            f"{int(labels.min())}..{int(labels.max())} (-1 means unlabelled)"
        )


def _optimizer(
    model: nn.Module, config: ClassifierConfig, num_images: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW and its one-cycle schedule over every step of `config.epochs`."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-num_images // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.15
    )
    return opt, sched


def _train_epoch(
    model: DomainClassifier,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    batch_size: int,
    max_shift: int,
    gen: torch.Generator,
    device: torch.device,
) -> dict[str, float]:
    """One pass over the training images in a random order: mean loss and accuracy."""
    model.train()
    order = torch.randperm(len(x_all), generator=gen)
    total, correct, loss_sum = 0, 0, 0.0
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        x = _shift_augment(x_all[idx], max_shift, gen).to(device)
        y = y_all[idx].to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=LABEL_SMOOTHING)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.item() * len(idx)
        correct += (logits.argmax(1) == y).sum().item()
        total += len(idx)
    return {"loss": loss_sum / total, "train_accuracy": correct / total}


def _validate(
    model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, device: torch.device
) -> dict[str, float]:
    """Accuracy and (unsmoothed) loss on the validation set."""
    logits = predict_logits(model, images, device=device)
    return {
        "val_accuracy": (logits.argmax(1) == labels).float().mean().item(),
        "val_loss": F.cross_entropy(logits, labels.long()).item(),
    }


@dataclass
class _Best:
    """The epoch kept so far: its number, validation accuracy and weights."""

    epoch: int
    accuracy: float = -1.0
    key: tuple[float, float] = (0.0, 0.0)
    state: dict[str, Any] | None = None

    def consider(self, model: nn.Module, row: dict[str, float], epoch: int) -> None:
        """Keep `model`'s weights when this epoch beats the kept one."""
        # Best accuracy, ties (a small val set saturates) broken by the lower loss.
        key = (row["val_accuracy"], -row["val_loss"])
        if self.state is None or key > self.key:
            self.key, self.accuracy, self.epoch = key, row["val_accuracy"], epoch
            self.state = copy.deepcopy(model.state_dict())


def save_classifier(
    path: str | os.PathLike[str],
    model: DomainClassifier,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the classifier with its constructor config (and e.g. training options), atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {
        "format": FORMAT_VERSION,
        "trained": True,
        "config": model.config(),
        "state_dict": state,
        "extra": extra or {},
    }
    torch_save(blob, path)


def save_placeholder(path: str | os.PathLike[str], reason: str) -> None:
    """Write a file that says why there is no classifier (e.g. unlabelled data), atomically.

    The pipeline's DVC out must exist either way; `load_classifier` reads the reason back.
    """
    torch_save({"format": FORMAT_VERSION, "trained": False, "reason": reason}, path)


class NoClassifierError(RuntimeError):
    """The classifier file holds no trained network (unlabelled or toy data)."""


def load_classifier(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[DomainClassifier, dict[str, Any]]:
    """Rebuild a saved classifier in eval mode: (module, extra)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no classifier there (run `dvc repro classifier`)")
    blob = torch.load(file, map_location="cpu", weights_only=True)
    if not blob.get("trained", False):
        raise NoClassifierError(
            f"{file} holds no classifier: {blob.get('reason', 'unknown reason')}. "
            "Use evaluate.backend: inception for this data set."
        )
    model = DomainClassifier(**blob["config"])
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), dict(blob.get("extra") or {})
