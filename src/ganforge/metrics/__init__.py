"""Metrics of generated samples: FID/KID/IS on a chosen feature net, precision/recall, class
coverage, the toy-data measures and the Parzen window (one file per metric, on `features.py`)."""

from __future__ import annotations

from ganforge.metrics.copies import copy_fraction, nearest_distances
from ganforge.metrics.coverage import (
    class_coverage,
    class_histogram,
    class_share_ratios,
    conditional_accuracy,
)
from ganforge.metrics.evaluate import EvalResult, build_feature_net, evaluate_images, evaluate_toy
from ganforge.metrics.features import (
    ClassifierFeatureNet,
    FeatureNet,
    FeatureSet,
    InceptionFeatureNet,
    Precomputed,
    TorchmetricsFeature,
    extract_features,
    find_inception_weights,
    iter_generated,
    sample_labels,
)
from ganforge.metrics.fid import frechet_distance, frechet_distance_gaussians, min_fid_samples
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.parzen import parzen_log_likelihood, parzen_score
from ganforge.metrics.precision_recall import inside_manifold, knn_radii, precision_recall
from ganforge.metrics.toy import (
    jensen_shannon_1d,
    mode_coverage,
    mode_histogram,
    ring_coverage,
    value_function,
)

__all__ = [
    "ClassifierFeatureNet",
    "EvalResult",
    "FeatureNet",
    "FeatureSet",
    "InceptionFeatureNet",
    "Precomputed",
    "TorchmetricsFeature",
    "build_feature_net",
    "class_coverage",
    "class_histogram",
    "class_share_ratios",
    "conditional_accuracy",
    "copy_fraction",
    "evaluate_images",
    "evaluate_toy",
    "extract_features",
    "find_inception_weights",
    "frechet_distance",
    "frechet_distance_gaussians",
    "inception_score",
    "inside_manifold",
    "jensen_shannon_1d",
    "iter_generated",
    "kernel_inception_distance",
    "knn_radii",
    "min_fid_samples",
    "nearest_distances",
    "mode_coverage",
    "mode_histogram",
    "parzen_log_likelihood",
    "parzen_score",
    "precision_recall",
    "ring_coverage",
    "sample_labels",
    "value_function",
]
