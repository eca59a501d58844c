"""Evaluation speed: scoring 10 000 generated 32×32 digits with the classifier backend.

Prepares scikit-learn digits at 32 px (1 channel) in a temp folder, trains the domain
classifier at its defaults (reports its time and test accuracy), then times `evaluate_images`
for a DCGAN generator (nz 100, ngf 64; untrained: the speed does not depend on the weights)
over `--samples` samples, including the train/test reference features and every metric.

    python bench/eval_speed.py [--samples 10000] [--threads 2] [--batch-size 500]

The target is <= 60 s on a 2-core CPU. Prints the total, its parts and the FID floor.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from ganforge.classifier import accuracy, train_classifier
from ganforge.config import ClassifierConfig, EvaluateConfig, PrepareConfig
from ganforge.data import load_split, prepare_dataset
from ganforge.metrics import ClassifierFeatureNet, evaluate_images
from ganforge.models import GeneratorSpec, build_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "prepared"
        prepare_dataset(PrepareConfig(dataset="digits", image_size=32, channels=1), 0, store)
        train, val, test = (load_split(store, s, mmap=False) for s in ("train", "val", "test"))

    result = train_classifier(
        train.data, train.labels, 10, ClassifierConfig(), val.data, val.labels, seed=args.seed
    )
    test_acc = accuracy(result.model, test.data, test.labels)
    print(
        f"classifier: trained in {result.seconds:.1f} s, test accuracy {test_acc:.4f} "
        f"({len(test)} images), val accuracy {result.val_accuracy:.4f}"
    )

    spec = GeneratorSpec(arch="dcgan", nz=100, sample_shape=(1, 32, 32), ngf=64, ndf=64)
    torch.manual_seed(args.seed)
    generator = build_generator(spec).eval()
    cfg = EvaluateConfig(num_samples=args.samples, batch_size=args.batch_size)
    start = time.perf_counter()
    out = evaluate_images(
        generator,
        spec,
        ClassifierFeatureNet(result.model),
        (train.data, train.labels),
        (test.data, test.labels),
        cfg,
        val=(val.data, val.labels),
        seed=args.seed,
    )
    total = time.perf_counter() - start
    m = out.metrics
    print(
        f"evaluate: {m['num_samples']} samples in {total:.1f} s on {args.threads} threads "
        f"(real features {m['real_feature_seconds']:.1f} s, generation + features "
        f"{m['generate_feature_seconds']:.1f} s, metrics "
        f"{total - m['real_feature_seconds'] - m['generate_feature_seconds']:.1f} s)"
    )
    print(
        f"fid_floor (train {m['floor_train_samples']} vs test {m['real_samples']}): "
        f"{m['fid_floor']:.4f}; IS of the real test split {m['is_real_mean']:.2f}; "
        f"untrained G: fid {m['fid']:.2f}, is {m['is_mean']:.3f}"
    )
    print(f"target <= 60 s: {'met' if total <= 60 else 'MISSED'}")


if __name__ == "__main__":
    main()
