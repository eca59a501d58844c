"""How often the domain classifier sees the class a latent-class (or conditional) G was asked for.

    python bench/class_on_request.py [--repo DIR] [--samples 500] [--truncation 1.0]
                                     [--json out.json]

Loads DIR's exported generator (models/generator.onnx, through `ganforge.inference`, as the CLI,
the server and the page do) and its domain classifier (models/classifier.pt), asks for
`--samples` images of each class, and prints the share the classifier assigns to that class,
per class and overall. Run it in a repository (or a bench/quality.py `--keep` workspace) whose
pipeline has run through `export`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.classifier import load_classifier, predict_logits
from ganforge.inference import Generator


def agreement(repo: Path, samples: int, truncation: float) -> dict[str, Any]:
    """Per class k: the share of `samples` images asked for k that the classifier calls k."""
    generator = Generator.load(repo / "models" / "generator.onnx", provider="cpu")
    classifier, extra = load_classifier(repo / "models" / "classifier.pt")
    meta = generator.metadata
    if not meta.num_classes:
        raise SystemExit(f"{repo}: this generator has no classes: nothing to ask for")
    names = list(meta.class_names) or [str(k) for k in range(meta.num_classes)]
    shares = []
    for k in range(meta.num_classes):
        z = generator.latents(samples, seed=1000 + k, truncation=truncation)
        images = generator.decode(z, [k] * samples)  # uint8 [N, H, W, C], what apps get
        nchw = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        predicted = predict_logits(classifier, nchw).argmax(1)
        shares.append(float((predicted == k).float().mean()))
    return {
        "samples_per_class": samples,
        "truncation": truncation,
        "classes": names,
        "per_class": shares,
        "overall": sum(shares) / len(shares),
        "classifier_test_accuracy": (extra.get("metrics") or {}).get("test_accuracy"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--truncation", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = agreement(args.repo, args.samples, args.truncation)
    for name, share in zip(result["classes"], result["per_class"], strict=True):
        print(f"class {name:>6}: {share:.3f}")
    print(
        f"overall {result['overall']:.3f} of {args.samples} samples a class (truncation "
        f"{args.truncation}; classifier test accuracy {result['classifier_test_accuracy']})"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
