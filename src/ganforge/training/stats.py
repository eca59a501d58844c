"""Running training statistics: summed on the device between log steps, read in one host sync.

The step adds losses and D's verdicts every iteration (`accumulate`) and, on a log step only,
gradient norms and batch spreads (`note`); `flush` averages them into one history row and
stops the run when a loss is not finite.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

# The columns of a history row, besides step, images_per_s and diversity.
ROW_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_g", "grad_norm_d")
# Kept from the last iteration before a flush (not averaged); None where not measured.
LAST_KEYS = ("grad_norm_g", "grad_norm_d", "spread_real", "spread_fake")
_LOSSES = ("loss_d", "loss_g")
_NON_FINITE_HINT = (
    "training stopped; the last good checkpoint is kept. Lower the learning rates, "
    "try amp: off, or another loss."
)


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left untouched."""


def grad_norm(module: nn.Module) -> torch.Tensor:
    """The L2 norm of all of `module`'s gradients together (0 when it has none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def spread(x: torch.Tensor) -> torch.Tensor:
    """Mean pairwise distance within a batch (the sample diversity the collapse check uses)."""
    flat = x.detach().float().flatten(1)
    return torch.pdist(flat).mean() if flat.shape[0] > 1 else torch.zeros((), device=x.device)


class RunningStats:
    """The statistics of the iterations since the last log step, and the images they showed D.

    `want` is set by the loop before an iteration whose statistics will be logged: only then
    does the step pay for gradient norms and spreads.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, torch.Tensor | None] = {}
        self.want = False
        self.images = 0
        self.since = time.perf_counter()

    def accumulate(self, **values: torch.Tensor) -> None:
        """Add one iteration's values (averaged at the flush)."""
        for key, value in values.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def note(self, **values: torch.Tensor | None) -> None:
        """Keep the latest values (gradient norms, spreads): they are logged as they are."""
        self.last.update(values)

    def check_finite(self, step: int) -> None:
        """Before a checkpoint: the losses since the last log step must be finite."""
        losses = [self.sums[k] for k in _LOSSES if k in self.sums]
        if losses and not bool(torch.isfinite(torch.stack(losses)).all()):
            raise NonFiniteLossError(
                f"a loss became NaN or infinite before step {step}: {_NON_FINITE_HINT}"
            )

    def flush(self, step: int) -> dict[str, float]:
        """Average the accumulated statistics (one host sync); raise if a loss is not finite."""
        keys = list(self.sums)
        last = {k: v for k in LAST_KEYS if (v := self.last.get(k)) is not None}
        parts = [self.sums[k] / self.counts[k] for k in keys] + list(last.values())
        values = torch.stack([t.float().to(self.device) for t in parts]).cpu()
        numbers = dict(zip(keys + list(last), values.tolist(), strict=True))
        bad = [k for k in _LOSSES if not math.isfinite(numbers.get(k, 0.0))]
        if bad:
            raise NonFiniteLossError(
                f"{' and '.join(bad)} became {numbers[bad[0]]} by step {step}: {_NON_FINITE_HINT}"
            )
        elapsed = time.perf_counter() - self.since
        row = {"step": step, **{k: numbers.get(k, math.nan) for k in ROW_KEYS}}
        row["images_per_s"] = self.images / elapsed if elapsed > 0 else math.nan
        real, fake = numbers.get("spread_real", math.nan), numbers.get("spread_fake", math.nan)
        row["diversity"] = fake / real if real > 0 else math.nan
        self.reset()
        return row
