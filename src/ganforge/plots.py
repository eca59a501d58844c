"""Pictures of toy samples: a histogram (1-D) or a scatter plot (2-D), written atomically."""

from __future__ import annotations

import os

import torch

from ganforge.io import atomic_path


def plot_points(
    points: torch.Tensor,
    path: str | os.PathLike[str],
    title: str,
    real: torch.Tensor | None = None,
    size: float = 4.0,
) -> None:
    """Draw generated `points` [N, 1 | 2] (over `real` ones when given) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fake = points.detach().float().cpu().numpy()
    ref = real.detach().float().cpu().numpy() if real is not None else None
    fig, ax = plt.subplots(figsize=(size, size), dpi=80)
    if fake.shape[1] >= 2:
        if ref is not None:
            ax.scatter(ref[:, 0], ref[:, 1], s=2, alpha=0.4, label="real (test)")
        ax.scatter(fake[:, 0], fake[:, 1], s=2 if ref is not None else 6, alpha=0.4,
                   label="generated")  # fmt: skip
        ax.set_aspect("equal")
    else:
        if ref is not None:
            ax.hist(ref[:, 0], bins=60, density=True, alpha=0.5, label="real (test)")
        ax.hist(fake[:, 0], bins=60 if ref is not None else 30, density=ref is not None,
                alpha=0.5, label="generated")  # fmt: skip
    ax.set_title(title)
    if ref is not None:
        ax.legend(loc="upper right")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def histogram_rows(
    fake: torch.Tensor, real: torch.Tensor, bins: int = 40
) -> list[dict[str, float | int | str]]:
    """Counts of 1-D generated and real points on shared bins: rows (class, generated, real)."""
    fake, real = fake.flatten().double(), real.flatten().double()
    lo = float(min(fake.min(), real.min()))
    hi = float(max(fake.max(), real.max()))
    edges = torch.linspace(lo, hi + 1e-6, bins + 1, dtype=torch.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    gen_h = torch.histogram(fake, edges).hist
    real_h = torch.histogram(real, edges).hist
    return [
        {"class": f"{c:.3f}", "generated": int(g), "real": int(r)}
        for c, g, r in zip(centres.tolist(), gen_h.tolist(), real_h.tolist(), strict=True)
    ]
