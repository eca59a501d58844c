"""The lectures, visible: every idea of the course as a picture a run draws (docs/lectures.md).

`theory` holds the formulas (D*, C(G) = −log 4 + 2·JSD, the G losses' gradients), `snapshots`
the training callback that measures them on the networks in training (`probes` how it reads
the networks, `files` what it writes), `figures` the pictures.
"""

from __future__ import annotations

from ganforge.lectures.figures import (
    DensityPanel,
    SurfacePanel,
    figure1_strip,
    saturation_figure,
    save_png,
    surface_strip,
)
from ganforge.lectures.snapshots import LectureSnapshots, snapshot_steps
from ganforge.lectures.theory import (
    OBJECTIVES,
    ToyDistribution,
    binned_jsd,
    game_value_at_optimum,
    generator_logit_gradients,
    jensen_shannon_discrete,
    jensen_shannon_grid,
    optimal_discriminator,
    value_on_grid,
)

__all__ = [
    "OBJECTIVES",
    "DensityPanel",
    "LectureSnapshots",
    "SurfacePanel",
    "ToyDistribution",
    "binned_jsd",
    "figure1_strip",
    "game_value_at_optimum",
    "generator_logit_gradients",
    "jensen_shannon_grid",
    "jensen_shannon_discrete",
    "optimal_discriminator",
    "saturation_figure",
    "save_png",
    "snapshot_steps",
    "surface_strip",
    "value_on_grid",
]
