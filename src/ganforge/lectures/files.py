"""The files of the lectures' snapshots: their CSV columns, the CSVs and figures written from a
run's rows and panels, and a panel as the checkpoint holds it.

Every file is written atomically (`ganforge.io.atomic_path`); a CSV whose measure the data do
not define keeps its header and no rows, and a figure that is not defined is not written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.io import write_csv
from ganforge.lectures.figures import (
    DensityPanel,
    SurfacePanel,
    figure1_strip,
    saturation_figure,
    save_png,
    surface_strip,
)
from ganforge.lectures.theory import OBJECTIVES, ToyDistribution

VALUE_COLUMNS = ("step", "value_v", "value_at_d_star", "jsd", "minus_log_4")
MODE_COLUMNS = ("step", "modes_covered", "num_modes", "hq_share")
DENSITY_COLUMNS = ("x", "p_data", "p_g", "d", "d_star")
SATURATION_COLUMNS = ("step", "d_fake") + tuple(
    f"grad_{at}_{kind}" for at in ("logit", "x") for kind in OBJECTIVES
)
FIGURES = ("figure1.png", "modes.png", "saturation.png")


def write_csvs(
    folder: Path,
    value_rows: Sequence[Mapping[str, Any]],
    mode_rows: Sequence[Mapping[str, Any]],
    saturation_rows: Sequence[Mapping[str, Any]],
    toy: ToyDistribution | None,
    panels: Sequence[Mapping[str, Any]],
) -> None:
    """value.csv, modes.csv, saturation.csv from their rows; densities.csv from the last panel
    (as `panel_state` keeps it) on 1-D points, header only otherwise."""
    write_csv(folder / "value.csv", VALUE_COLUMNS, value_rows)
    write_csv(folder / "modes.csv", MODE_COLUMNS, mode_rows)
    write_csv(folder / "saturation.csv", SATURATION_COLUMNS, saturation_rows)
    densities: list[dict[str, float]] = []
    if toy is not None and toy.dim == 1 and panels:
        last = panels[-1]
        densities = [
            dict(zip(DENSITY_COLUMNS, values, strict=True))
            for values in zip(*(last[c].tolist() for c in DENSITY_COLUMNS), strict=True)
        ]
    write_csv(folder / "densities.csv", DENSITY_COLUMNS, densities)


def write_figures(
    figures: Path,
    saturation_rows: Sequence[Mapping[str, float]],
    objective: str,
    toy: ToyDistribution | None,
    panels: Sequence[Mapping[str, Any]],
) -> None:
    """The figures, from every snapshot of the run (`panels` as `panel_state` keeps them)."""
    if saturation_rows:
        save_png(saturation_figure(saturation_rows, objective), figures / FIGURES[2])
    if toy is None or not panels:
        return
    if toy.dim == 1:
        dens = [DensityPanel(**panel_arrays(p)) for p in panels]
        save_png(figure1_strip(dens), figures / FIGURES[0])
    else:
        surf = [SurfacePanel(**panel_arrays(p)) for p in panels]
        save_png(surface_strip(surf), figures / FIGURES[1])


def panel_state(panel: DensityPanel | SurfacePanel) -> dict[str, Any]:
    """A panel as the checkpoint can hold it (tensors and numbers: `weights_only` loading)."""
    return {
        k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in vars(panel).items()
    }


def panel_arrays(state: Mapping[str, Any]) -> dict[str, Any]:
    """A panel's fields back from `panel_state` (tensors to numpy arrays)."""
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
