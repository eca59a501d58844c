"""The GAN training loop (Algorithm 1 of Goodfellow et al. 2014) and what surrounds it."""

from __future__ import annotations

from ganforge.metrics.fid import min_fid_samples
from ganforge.training.architecture import make_spec
from ganforge.training.callbacks import (
    HISTORY_COLUMNS,
    QUALITY_COLUMNS,
    HealthMonitor,
    HistoryCSV,
    SampleGrid,
    write_history_csv,
)
from ganforge.training.distributed import (
    DistContext,
    cleanup_distributed,
    current_context,
    init_distributed,
)
from ganforge.training.measures import (
    GaussianJSD,
    ModeQuality,
    SelectionMeasure,
    ValidationFID,
    starved_classes,
)
from ganforge.training.quality import QualityMonitor
from ganforge.training.state import LAST_CHECKPOINT
from ganforge.training.stats import NonFiniteLossError
from ganforge.training.trainer import Callback, GANTrainer, TrainResult, fit

__all__ = [
    "HISTORY_COLUMNS",
    "LAST_CHECKPOINT",
    "QUALITY_COLUMNS",
    "Callback",
    "DistContext",
    "GANTrainer",
    "GaussianJSD",
    "HealthMonitor",
    "HistoryCSV",
    "ModeQuality",
    "NonFiniteLossError",
    "QualityMonitor",
    "SampleGrid",
    "SelectionMeasure",
    "TrainResult",
    "ValidationFID",
    "cleanup_distributed",
    "current_context",
    "fit",
    "init_distributed",
    "make_spec",
    "min_fid_samples",
    "starved_classes",
    "write_history_csv",
]
