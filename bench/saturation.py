"""Saturation, measured: the minimax and the non-saturating G loss on the same seed, overlaid.

    python bench/saturation.py [--data gaussian_1d] [--steps 600] [--seed 0] [--d-steps 1]
                               [--optimizer sgd] [--lr-g 0.05] [--lr-d 0.1]
                               [--recipe-optimiser] [--out DIR] [--json out.json]

Prepares `--data` as the `prepare` stage does (params.yaml's defaults), resolves the training
recipe that `train.model: auto` gives those data, and trains it twice through the library for
the first `--steps` steps, once with `train.loss: minimax` and once with `non_saturating`,
everything else equal (seed, initial weights, batches). Each run carries the lectures'
snapshots (`ganforge.lectures.LectureSnapshots`). By default both use the paper's optimiser,
SGD with momentum, with D's learning rate above G's (`--recipe-optimiser`: the recipe's Adam,
which rescales small gradients and so hides most of the stall); `--d-steps` is the paper's k.

Prints, at log-spaced steps, for both runs: G's loss, D(G(z)), the mean gradient of G's loss
at D's logit (minimax: D(G(z)); non-saturating: 1 − D(G(z))), the norm of G's weight gradient
and JSD(p_data ‖ p_g); then the step at which each run's JSD first halves and where the
minimax G stalls: from the step at which the non-saturating G has halved its JSD to the step at
which the minimax G has, with its gradient at the logit there against what the non-saturating
loss gets from the same D and samples. Writes to `--out` the overlay of the early curves
(overlay.png) and each run's lectures files (minimax/, non_saturating/).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.config import PrepareConfig
from ganforge.data import load_meta, load_split, prepare_dataset
from ganforge.lectures import LectureSnapshots
from ganforge.lectures.figures import save_png
from ganforge.recipe import DataFacts, resolve_recipe
from ganforge.training import fit

OBJECTIVES = ("minimax", "non_saturating")
TOY = ("gaussian_1d", "ring_2d", "grid_2d")


def train_both(
    data: str, steps: int, seed: int, out: Path, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Both objectives on the same prepared data, recipe and seed: their logged rows."""
    prepared = out / "prepared"
    prepare_dataset(PrepareConfig.model_validate({"dataset": data}), seed=seed, out_dir=prepared)
    meta = load_meta(prepared)
    train, val = load_split(prepared, "train"), load_split(prepared, "val")
    runs: dict[str, Any] = {"data": data, "steps": steps, "seed": seed, "overrides": overrides}
    for objective in OBJECTIVES:
        request: dict[str, Any] = {"loss": objective, "max_steps": steps, "device": "cpu"}
        request |= {"log_every": max(1, steps // 200), **overrides}
        recipe = resolve_recipe(request, DataFacts.from_meta(meta))
        snaps = LectureSnapshots(out / objective, meta, held_out=val.data, rows=200, seed=seed + 3)
        result = fit(recipe.config, train.data, seed=seed, callbacks=[snaps])
        runs["recipe"] = recipe.name
        runs["optimizer"] = recipe.config.optimizer
        runs[objective] = {
            "history": [_plain(r) for r in result.history],
            "value": snaps.value_rows,
            "seconds": round(result.seconds, 1),
        }
    return runs


def _plain(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, int | float)}


def logit_gradient(row: dict[str, float], objective: str) -> float:
    """Mean |∂ℓ_G/∂logit| over the step's fakes: D(G(z)) for minimax, 1 − D(G(z)) otherwise."""
    return row["d_fake"] if objective == "minimax" else 1.0 - row["d_fake"]


def stall(runs: dict[str, Any]) -> dict[str, Any]:
    """Where the minimax G stalls: from the step at which the non-saturating run's JSD has
    halved to the step at which the minimax run's has (same seed, same first batches).

    Over that window, the minimax run's mean gradient at D's logit, D(G(z)), against what the
    non-saturating loss would get from the same D and samples, 1 − D(G(z)).
    """
    halved: dict[str, int | None] = {}
    for objective in OBJECTIVES:
        rows = runs[objective]["value"]
        start = rows[0]["jsd"] if rows else math.nan
        halved[objective] = next((int(r["step"]) for r in rows if r["jsd"] <= start / 2), None)
    found: dict[str, Any] = {"jsd_halved_at": halved, "stall": None}
    begin, end = halved["non_saturating"], halved["minimax"]
    if begin is None or (end is not None and end <= begin):
        return found
    hist = runs["minimax"]["history"]
    last = int(hist[-1]["step"]) if hist else begin
    window = [r for r in hist if begin <= r["step"] < (end if end is not None else last + 1)]
    if not window:
        return found
    d = np.array([r["d_fake"] for r in window])
    found["stall"] = {
        "from": begin,
        "to": end,  # None: not within --steps
        "mean_d_fake": float(d.mean()),
        "logit_gradient_ratio": float(np.mean(d / (1.0 - d))),
    }
    return found


def _nearest(steps: list[int], target: float) -> int:
    return min(steps, key=lambda s: abs(s - target))


def print_table(runs: dict[str, Any], points: int = 12) -> None:
    """Both runs side by side at log-spaced logged steps."""
    by_step = {o: {int(r["step"]): r for r in runs[o]["history"]} for o in OBJECTIVES}
    jsd = {o: {int(r["step"]): r["jsd"] for r in runs[o]["value"]} for o in OBJECTIVES}
    steps = sorted(set(by_step["minimax"]) & set(by_step["non_saturating"]))
    if not steps:
        return
    wanted = np.unique(np.geomspace(steps[0], steps[-1], points).round().astype(int))
    shown = sorted({_nearest(steps, w) for w in wanted})
    head = "loss_G  D(G(z))  |dl/dlogit|  |grad G|    JSD"
    print(f"{'':>7}  {'minimax':^45}  {'non-saturating':^45}")
    print(f"{'step':>7}  {head:>45}  {head:>45}")
    for s in shown:
        cells = []
        for o in OBJECTIVES:
            r = by_step[o][s]
            j = jsd[o][_nearest(list(jsd[o]), s)] if jsd[o] else math.nan
            cells.append(
                f"{r['loss_g']:6.3f}  {r['d_fake']:7.4f}  {logit_gradient(r, o):11.4f}  "
                f"{r.get('grad_norm_g', math.nan):8.4f}  {j:6.3f}"
            )
        print(f"{s:>7}  {cells[0]:>45}  {cells[1]:>45}")


def overlay(runs: dict[str, Any], window: dict[str, Any] | None, path: Path) -> None:
    """G's loss, the gradient at the logit, G's weight-gradient norm and JSD, both runs, with
    the minimax G's stall shaded."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig = Figure(figsize=(14, 3.8))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.82, wspace=0.3)
    axes = fig.subplots(1, 4)
    colours = {"minimax": "tab:red", "non_saturating": "tab:blue"}
    for o in OBJECTIVES:
        hist = runs[o]["history"]
        step = [r["step"] for r in hist]
        axes[0].plot(step, [r["loss_g"] for r in hist], color=colours[o], label=o)
        axes[1].plot(step, [logit_gradient(r, o) for r in hist], color=colours[o], label=o)
        axes[2].plot(step, [r.get("grad_norm_g", math.nan) for r in hist], color=colours[o],
                     label=o)  # fmt: skip
        value = runs[o]["value"]
        axes[3].plot([r["step"] for r in value], [r["jsd"] for r in value], color=colours[o],
                     label=o)  # fmt: skip
    changed = ", ".join(f"{k} {v}" for k, v in runs["overrides"].items())
    titles = ("G's loss", "mean |∂ℓ_G/∂logit|", "‖∇_θ ℓ_G‖ (G's weights)", "JSD(p_data ‖ p_g)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("step")
        ax.set_ylabel(title)
        if window is not None:
            end = window["to"] if window["to"] is not None else runs["steps"]
            ax.axvspan(window["from"], end, color="0.85", zorder=0, label="minimax G stalls")
        ax.legend(fontsize=8)
    for ax in axes[1:3]:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(
        f"{runs['data']}, recipe {runs['recipe']} ({changed}), seed {runs['seed']}: "
        "the saturating minimax G loss against the non-saturating one"
    )
    save_png(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=TOY, default="gaussian_1d")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    # The paper's optimiser by default: SGD with momentum, D a step ahead of G. Adam (the
    # recipe's) divides each gradient by its running scale, which hides most of the stall.
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="sgd")
    parser.add_argument("--lr-g", type=float, default=0.05, help="G's learning rate")
    parser.add_argument("--lr-d", type=float, default=0.1, help="D's learning rate")
    parser.add_argument("--d-steps", type=int, default=1, help="D updates per G update (k)")
    parser.add_argument("--recipe-optimiser", action="store_true",
                        help="keep the recipe's optimiser and learning rates")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="default: a new temp folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="saturation-"))
    torch.set_num_threads(1)  # tiny MLPs: one thread is fastest and leaves the others free
    overrides: dict[str, Any] = {"d_steps": args.d_steps}
    if not args.recipe_optimiser:
        overrides |= {"optimizer": args.optimizer, "lr_g": args.lr_g, "lr_d": args.lr_d}
    runs = train_both(args.data, args.steps, args.seed, out, overrides)
    changed = ", ".join(f"{k} {v}" for k, v in overrides.items())
    print(f"{args.data}: recipe {runs['recipe']} ({changed}), {args.steps} steps, seed {args.seed}")
    print_table(runs)
    found = stall(runs)
    halved, window = found["jsd_halved_at"], found["stall"]
    print(f"JSD first halves at step {halved['minimax']} (minimax) and "
          f"{halved['non_saturating']} (non-saturating)")  # fmt: skip
    if window is None:
        print(
            "the minimax G does not fall behind here: a stronger D (--d-steps, --lr-d) and "
            "plain SGD (--optimizer sgd; Adam rescales small gradients) make it stall"
        )
    else:
        until = window["to"] if window["to"] is not None else f"beyond step {args.steps}"
        print(
            f"the minimax G stalls from step {window['from']} to {until}: there its gradient at "
            f"D's logit is D(G(z)) = {window['mean_d_fake']:.3f} on average, "
            f"{window['logit_gradient_ratio']:.2f} x what the non-saturating loss gets from the "
            "same D and samples"
        )
    overlay(runs, window, out / "overlay.png")
    print(f"overlay: {out / 'overlay.png'}; lectures files: {out}/<objective>/")
    if args.json:
        args.json.write_text(json.dumps({**runs, **found}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
