"""What a GAN must beat: Gaussian mixtures in a PCA space, scored by the evaluate stage's evaluator.

For the prepared image data of a workspace (data/prepared, models/classifier.pt and params.yaml,
as the stages leave them), fits a full-covariance Gaussian mixture of 10 and of 40 components in
the 100-d PCA space of the training images, scaled as training scales them ([-1, 1]). Each
mixture becomes a generator module (`GMMGenerator`: one z in, one mixture sample out) that goes
through the very code the stages run:

- `evaluate_images` with the evaluate section of params.yaml: FID against the test split on the
  same feature net (`evaluate.backend`), precision / recall, classes, copies, the same seed;
- the train stage's validation measure (the `QualityMonitor` that `monitor_for` builds):
  `train.fid_samples` samples for the monitor's fixed z against the validation split, i.e. the
  line a training curve (plots/train_history.csv, fid_val) is to be compared with.

    python bench/baselines.py [--components 10 40] [--pca-dim 100] [--json out.json]

Run from a repository (or a bench workspace) whose prepare and classifier stages have run;
bench/quality.py runs it in each image data set's workspace and prints the rows beside the GANs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

COMPONENTS = (10, 40)
PCA_DIM = 100


class GMMGenerator(nn.Module):
    """A Gaussian mixture in a PCA space as a generator: z [B, 1 + d] -> images [B, C, H, W].

    z[:, 0] picks the component (through the normal CDF, by the mixture weights), z[:, 1:] is
    the standard normal draw that the component's Cholesky factor shapes: with z ~ N(0, I) the
    output is an exact sample of the mixture, mapped back to pixels by the PCA basis (in the
    model's [-1, 1] range; to_uint8 clamps as for a GAN). The evaluator's seeded z thus fix the
    samples, as they do a GAN's.
    """

    def __init__(
        self,
        weights: np.ndarray,
        means: np.ndarray,
        cholesky: np.ndarray,
        basis: np.ndarray,
        offset: np.ndarray,
        shape: tuple[int, int, int],
    ) -> None:
        super().__init__()
        as64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
        cum = as64(weights).cumsum(0)
        self.register_buffer("cum_weights", cum / cum[-1])
        self.register_buffer("means", as64(means))  # [K, d]
        self.register_buffer("cholesky", as64(cholesky))  # [K, d, d], covariance = L L^T
        self.register_buffer("basis", as64(basis))  # [d, D]
        self.register_buffer("offset", as64(offset))  # [D]
        self.shape = tuple(shape)
        self.dim = int(self.means.shape[1])

    @property
    def nz(self) -> int:
        return self.dim + 1

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.to(torch.float64)
        u = 0.5 * (1.0 + torch.erf(z[:, 0] / math.sqrt(2.0)))
        k = torch.searchsorted(self.cum_weights, u.contiguous()).clamp_(max=len(self.means) - 1)
        x = self.means[k] + torch.einsum("bij,bj->bi", self.cholesky[k], z[:, 1 : self.nz])
        pixels = x @ self.basis + self.offset
        return pixels.view(len(z), *self.shape).float()


def fit_gmm(
    images: torch.Tensor, components: int, pca_dim: int = PCA_DIM, seed: int = 0
) -> GMMGenerator:
    """Fit PCA (`pca_dim`, fewer when the data allow fewer) and a full-covariance mixture of
    `components` Gaussians to uint8 images [N, C, H, W] scaled to [-1, 1]."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    from ganforge.data import to_model_range

    shape = tuple(int(s) for s in images.shape[1:])
    x = to_model_range(torch.as_tensor(images)).reshape(len(images), -1).double().numpy()
    dim = min(pca_dim, x.shape[0] - 1, x.shape[1])
    pca = PCA(n_components=dim, random_state=seed).fit(x)
    codes = pca.transform(x)
    gmm = GaussianMixture(components, covariance_type="full", random_state=seed).fit(codes)
    if not gmm.converged_:
        print(f"baselines: GMM-{components} did not converge", file=sys.stderr)
    chol = np.linalg.cholesky(gmm.covariances_)
    return GMMGenerator(gmm.weights_, gmm.means_, chol, pca.components_, pca.mean_, shape)


def gmm_spec(generator: GMMGenerator) -> Any:
    """The GeneratorSpec the evaluator reads (nz, image shape, unconditional), unvalidated: no
    DCGAN is built from it; its arch only turns off the MLP GAN's Parzen score."""
    from ganforge.models import GeneratorSpec

    return GeneratorSpec.model_construct(
        arch="dcgan", nz=generator.nz, sample_shape=generator.shape, num_classes=0
    )


def validation_fid(
    generator: GMMGenerator,
    spec: Any,
    meta: dict[str, Any],
    classifier: Any,
    val_images: torch.Tensor,
    fid_samples: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> float:
    """The train stage's validation FID of `generator`: the monitor `monitor_for` builds for
    the stage (`train.fid_samples` samples and reals, seed `seed`), scored once."""
    from ganforge.training.quality import monitor_for

    monitor = monitor_for(
        meta,
        classifier,
        val_images,
        every=1,
        num_samples=fid_samples,
        keep="last",
        seed=seed,
        device=device,
    )
    trainer = SimpleNamespace(
        spec=spec, ema=None, g_core=generator.to(device), device=device, step=0
    )
    value, _ = monitor.score(trainer)  # type: ignore[arg-type]  # what generate() reads
    return value


def train_config(params: Any, meta: dict[str, Any]) -> Any:
    """The train section as the train stage runs it: its `auto` values resolved from what
    prepare recorded, as pipeline/train.py does."""
    from ganforge.recipe import DataFacts

    return params.train.resolve(DataFacts.from_meta(meta)).config


def gmm_baselines(
    components: tuple[int, ...] = COMPONENTS, pca_dim: int = PCA_DIM
) -> list[dict[str, Any]]:
    """One row per mixture for the workspace in the current directory (see the module doc)."""
    from ganforge.classifier import NoClassifierError, load_classifier
    from ganforge.data import load_meta, load_split
    from ganforge.device import resolve_device
    from ganforge.metrics import build_feature_net, evaluate_images
    from pipeline.params import load_params
    from pipeline.paths import CLASSIFIER_PATH, PREPARED_DIR

    params = load_params()
    cfg = params.evaluate
    device = resolve_device(cfg.device)
    meta = load_meta(PREPARED_DIR)
    splits = {s: load_split(PREPARED_DIR, s, mmap=False) for s in ("train", "val", "test")}
    if splits["train"].kind != "images":
        return []
    pair = {s: (split.data, split.labels) for s, split in splits.items()}
    fid_samples = train_config(params, meta).fid_samples
    try:
        classifier, _ = load_classifier(CLASSIFIER_PATH)
    except (NoClassifierError, FileNotFoundError) as err:
        classifier, no_classifier = None, str(err)
    try:
        net = build_feature_net(cfg.backend, classifier, cfg.inception_weights).to(device)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as err:
        why = f" ({no_classifier})" if classifier is None else ""
        raise SystemExit(f"evaluate.backend = {cfg.backend}: {err}{why}") from None
    rows = []
    for k in components:
        start = time.perf_counter()
        generator = fit_gmm(pair["train"][0], k, pca_dim, params.seed)
        fit_seconds = time.perf_counter() - start
        spec = gmm_spec(generator)
        result = evaluate_images(
            generator.to(device), spec, net, pair["train"], pair["test"], cfg,
            val=pair["val"], classifier=classifier,
            class_names=list(meta.get("classes") or []), seed=params.seed, device=device,
        )  # fmt: skip
        row: dict[str, Any] = {
            "baseline": f"gmm{k}",
            "dataset": meta.get("dataset"),
            "components": k,
            "pca_dim": generator.dim,
            "fit_seconds": round(fit_seconds, 2),
            **result.metrics,
        }
        if classifier is not None:
            row["fid_val"] = validation_fid(
                generator, spec, meta, classifier, pair["val"][0], fid_samples, params.seed, device
            )
            row["fid_val_samples"] = fid_samples
        else:
            row["fid_val_note"] = no_classifier
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", nargs="+", type=int, default=list(COMPONENTS))
    parser.add_argument("--pca-dim", type=int, default=PCA_DIM, help="PCA dimensions")
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path.cwd()))  # pipeline/ of the workspace this runs in
    rows = gmm_baselines(tuple(args.components), args.pca_dim)
    keys = ("fid", "fid_floor", "fid_val", "precision", "recall", "classes_covered", "fit_seconds")
    for row in rows:
        print(row["baseline"], " ".join(f"{k} {row[k]:.4g}" for k in keys if k in row))
    if args.json:
        from ganforge.io import write_json

        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
