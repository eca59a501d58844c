"""The lectures' pictures from a run's snapshots: matplotlib figures, PNGs written atomically.

- `figure1_strip`: Goodfellow et al. 2014's Figure 1 from a real 1-D run, one panel per snapshot:
  p_data (black, dotted), p_g (green), D (blue, dashed) and D* = p_data / (p_data + p_g)
  (purple) on one axis each, D on its own [0, 1] scale with ½ marked.
- `surface_strip`: 2-D mixtures, G's samples over D's decision surface (a filled contour of D
  with its ½ line) and the modes' centres, one panel per snapshot.
- `saturation_figure`: per sample, |∂ℓ_G/∂logit| and ‖∂ℓ_G/∂G(z)‖ against D(G(z)) for the
  minimax and the non-saturating G loss, over the closed forms σ(l) and 1 − σ(l).

Figures are built without pyplot (no global state; the PNG comes from the Agg canvas), and
matplotlib is imported only when one is drawn.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ganforge.io import atomic_path

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the module
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OBJECTIVE_STYLE = {  # colour map (darker: later step) and legend of each G loss
    "minimax": ("Reds", "minimax log(1 − D(G(z)))"),
    "non_saturating": ("Blues", "non-saturating −log D(G(z))"),
}
DPI = 80


@dataclass
class DensityPanel:
    """One 1-D snapshot: the curves of Figure 1 on the grid `x`."""

    step: int
    x: np.ndarray
    p_data: np.ndarray
    p_g: np.ndarray
    d: np.ndarray
    d_star: np.ndarray
    value_v: float = float("nan")
    value_at_d_star: float = float("nan")


@dataclass
class SurfacePanel:
    """One 2-D snapshot: D on the grid `xs` × `ys` (d is [len(ys), len(xs)]) and G's samples."""

    step: int
    xs: np.ndarray
    ys: np.ndarray
    d: np.ndarray
    fake: np.ndarray
    centres: np.ndarray
    modes_covered: int
    num_modes: int
    hq_share: float


def save_png(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Render `fig` with Agg into a PNG at `path`, atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def _letter(i: int) -> str:
    return f"({string.ascii_lowercase[i % 26]})"


def figure1_strip(panels: Sequence[DensityPanel]) -> Figure:
    """Figure 1 of Goodfellow et al. 2014 from this run: one panel per snapshot, left to right."""
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    width = 3.7 * n + 0.3
    fig = Figure(figsize=(width, 3.9))
    # Fixed margins rather than a layout engine: the engine costs more than drawing the panels.
    fig.subplots_adjust(left=0.55 / width, right=1 - 0.65 / width, bottom=0.3, top=0.8,
                        wspace=0.75)  # fmt: skip
    axes = fig.subplots(1, n, squeeze=False)[0]
    handles: list = []
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        handles = _density_panel(ax, panel, _letter(i))
    if panels:
        labels = [h.get_label() for h in handles]
        fig.legend(handles, labels, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle("Goodfellow et al. 2014, Figure 1, drawn from this run")
    return fig


def _density_panel(ax: Axes, panel: DensityPanel, letter: str) -> list:
    (p_data,) = ax.plot(panel.x, panel.p_data, "k:", lw=2, label="p_data")
    (p_g,) = ax.plot(panel.x, panel.p_g, color="tab:green", lw=1.5, label="p_g (KDE of G)")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    top = 1.05 * float(np.nanmax(np.concatenate([panel.p_data, panel.p_g])))
    ax.set_ylim(-0.03 * top, 1.03 * top)  # zero and the top aligned with D's 0 and 1
    right = ax.twinx()
    right.axhline(0.5, color="0.6", lw=0.8)
    (d,) = right.plot(panel.x, panel.d, "--", color="tab:blue", lw=1.5, label="D(x), learned")
    # D* where either distribution has mass: in the far tails it is a ratio of two vanishing
    # densities, which says nothing about the game.
    mass = panel.p_data + panel.p_g
    d_star = np.where(mass > 0.01 * np.max(mass), panel.d_star, np.nan)
    label = "D*(x) = p_data/(p_data+p_g)"
    (d_star_line,) = right.plot(panel.x, d_star, color="tab:purple", lw=1, alpha=0.8, label=label)
    right.set_ylim(-0.03, 1.03)  # D at 0 or 1 stays visible inside the frame
    right.set_ylabel("D(x), D*(x)")
    title = f"{letter} step {panel.step}"
    if np.isfinite(panel.value_v):
        title += f"\nV = {panel.value_v + 0.0:.3f}"  # + 0.0: no "-0.000"
        if np.isfinite(panel.value_at_d_star):
            title += f", C(G) = {round(panel.value_at_d_star, 3) + 0.0:.3f}"
    ax.set_title(title, fontsize=9)
    return [p_data, p_g, d, d_star_line]


def surface_strip(panels: Sequence[SurfacePanel]) -> Figure:
    """G's samples over D's decision surface, one panel per snapshot, with a shared D scale."""
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    width = 3.1 * n + 1.2
    fig = Figure(figsize=(width, 3.7))
    fig.subplots_adjust(left=0.5 / width, right=1 - 1.1 / width, bottom=0.14, top=0.82,
                        wspace=0.35)  # fmt: skip
    axes = fig.subplots(1, n, squeeze=False)[0]
    levels = np.linspace(0.0, 1.0, 11)
    filled = None
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        filled = ax.contourf(panel.xs, panel.ys, panel.d, levels=levels, cmap="coolwarm",
                             vmin=0.0, vmax=1.0)  # fmt: skip
        ax.contour(panel.xs, panel.ys, panel.d, levels=[0.5], colors="k", linewidths=0.8)
        ax.scatter(panel.fake[:, 0], panel.fake[:, 1], s=2, c="k", alpha=0.5, lw=0)
        ax.scatter(panel.centres[:, 0], panel.centres[:, 1], s=30, marker="+", c="yellow",
                   lw=1.2)  # fmt: skip
        ax.set_xlim(panel.xs[0], panel.xs[-1])
        ax.set_ylim(panel.ys[0], panel.ys[-1])
        ax.set_aspect("equal")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.set_title(
            f"{_letter(i)} step {panel.step}\n{panel.modes_covered}/{panel.num_modes} modes "
            f"covered, HQ {panel.hq_share:.0%}",
            fontsize=9,
        )
    if filled is not None:
        bar = fig.colorbar(filled, cax=fig.add_axes((1 - 0.9 / width, 0.14, 0.15 / width, 0.68)))
        bar.set_label("D(x); black line: D = ½")
    fig.suptitle("G's samples (black) over D's decision surface; + the modes of p_data")
    return fig


def saturation_figure(rows: Sequence[Mapping[str, float]], objective: str = "") -> Figure:
    """Per-sample gradient magnitudes of both G losses against D(G(z)), coloured by step.

    `rows` are the saturation rows of `LectureSnapshots` (step, d_fake, grad_logit_<loss>,
    grad_x_<loss>); `objective` names the loss the run trained with (in the title).
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig = Figure(figsize=(9.0, 4.2))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.8, wspace=0.28)
    left, right = fig.subplots(1, 2)
    steps = sorted({int(r["step"]) for r in rows})
    shade = {s: 0.35 + 0.65 * (i / max(1, len(steps) - 1)) for i, s in enumerate(steps)}
    d_fake = np.array([float(r["d_fake"]) for r in rows])
    # From D(G(z)) = 10⁻³ at least: the closed forms show where saturation sets in even when
    # this run's samples never got there.
    lo = min(1e-3, max(1e-8, float(np.nanmin(d_fake)) / 2)) if len(d_fake) else 1e-3
    grid = np.geomspace(lo, 1.0, 200)
    left.plot(grid, grid, ":", color="tab:red", lw=1.2, label="closed form σ(l)")
    left.plot(grid, 1 - grid, ":", color="tab:blue", lw=1.2, label="closed form 1 − σ(l)")
    for kind, (cmap_name, label) in OBJECTIVE_STYLE.items():
        cmap = matplotlib.colormaps[cmap_name]
        colours = [cmap(shade[int(r["step"])]) for r in rows]
        for ax, key in ((left, f"grad_logit_{kind}"), (right, f"grad_x_{kind}")):
            values = np.array([float(r.get(key, np.nan)) for r in rows])
            shown = np.isfinite(values)
            if shown.any():
                ax.scatter(d_fake[shown], np.clip(values[shown], 1e-12, None), s=6,
                           c=[c for c, ok in zip(colours, shown, strict=True) if ok], lw=0,
                           label=label)  # fmt: skip
    if not right.collections:  # PacGAN: D judges packs, a sample has no gradient of its own
        right.set_ylim(1e-3, 10)
        right.text(0.5, 0.5, "not defined: D judges packs of samples", ha="center",
                   transform=right.transAxes)  # fmt: skip
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, 1.0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("D(G(z))")
        if ax.collections:
            ax.legend(fontsize=7, loc="lower right")
    left.set_ylabel("|∂ℓ_G / ∂ logit|")
    left.set_title("gradient at D's logit (saturates as D(G(z)) → 0)", fontsize=9)
    right.set_ylabel("‖∂ℓ_G / ∂G(z)‖")
    right.set_title("gradient G receives, through D", fontsize=9)
    trained = f" (this run trains G with the {objective} loss)" if objective else ""
    span = f"steps {steps[0]}–{steps[-1]}, darker: later" if steps else "no snapshot"
    fig.suptitle(f"Saturation: both G losses on the same D and samples{trained}\n{span}")
    return fig
