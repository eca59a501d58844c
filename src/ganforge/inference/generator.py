"""An exported ganforge generator, run with onnxruntime: sampling, walks, latent arithmetic."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ganforge.inference import prng
from ganforge.inference.latent import Method, interpolate_latents, latent_arithmetic
from ganforge.inference.metadata import ModelMetadata
from ganforge.inference.session import ModelFileError, Provider, create_session

Labels = int | Sequence[int] | np.ndarray | None


class GeneratorInputError(ValueError):
    """A request the generator cannot serve: bad count, label, latent size..."""


class Generator:
    """A generator exported by `ganforge.export`, ready to sample.

    Images come back as uint8 [N, H, W, C] (HWC, as PIL and most apps expect); toy point
    generators return float32 points [N, D]. Latents are standard normal, drawn from `seed`
    with ganforge's portable generator (`ganforge.inference.prng`), so a seed gives the same
    samples on every machine and in the browser page.
    """

    def __init__(
        self, session: ort.InferenceSession, metadata: ModelMetadata, batch_size: int = 256
    ) -> None:
        self.session = session
        self.metadata = metadata
        self.batch_size = batch_size
        names = [i.name for i in session.get_inputs()]
        if names != list(metadata.input_names):
            raise ModelFileError(
                f"model inputs {names} do not match its metadata {list(metadata.input_names)}"
            )
        self._output = session.get_outputs()[0].name
        _check_graph_shapes(session, metadata)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        provider: Provider = "auto",
        threads: int | None = None,
    ) -> Generator:
        """Open an exported generator; `provider` auto picks CUDA only where it really runs."""
        session = create_session(Path(path), provider, threads)
        props = session.get_modelmeta().custom_metadata_map
        try:
            metadata = ModelMetadata.from_props(dict(props))
        except ValueError as err:
            raise ModelFileError(f"{path}: {err}") from None
        try:
            return cls(session, metadata)
        except ModelFileError as err:
            raise ModelFileError(f"{path}: {err}") from None

    # ---- facts ----------------------------------------------------------------------

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @property
    def nz(self) -> int:
        return self.metadata.nz

    # ---- latents and labels -----------------------------------------------------------

    def latents(
        self, num: int, seed: int | None = 0, truncation: float = 1.0, start: int = 0
    ) -> np.ndarray:
        """`num` standard-normal latents [num, nz] from `seed` (None: a fresh random seed).

        `start` skips the stream's first `start` latents (batch k of a large request).

        `truncation` ψ in (0, 1] scales them toward the prior's mean, 0 (the truncation trick
        of StyleGAN with a Gaussian prior): less variety, more typical samples. 1 = none.
        """
        _check_count(num, "num")
        if not 0.0 < truncation <= 1.0:
            raise GeneratorInputError(f"truncation = {truncation}: must be in (0, 1]")
        if seed is None:
            seed = int(np.random.default_rng().integers(0, prng.MAX_SEED))
        try:
            z = prng.normals(seed, num, self.nz, start)
        except ValueError as err:
            raise GeneratorInputError(str(err)) from None
        return z if truncation == 1.0 else (z * np.float32(truncation)).astype(np.float32)

    def iter_samples(
        self,
        num: int,
        seed: int | None = 0,
        labels: Labels = None,
        batch: int = 256,
        truncation: float = 1.0,
    ) -> Iterator[np.ndarray]:
        """`sample(num, seed, labels)` in batches of `batch`, with memory bounded by `batch`.

        The latent stream is counter-based, so batch k draws latents k·batch onward: the
        concatenated batches equal `sample(num, seed, labels)` for the same seed.
        """
        _check_count(num, "num")
        if seed is None:
            seed = int(np.random.default_rng().integers(0, prng.MAX_SEED))
        y = self.labels_for(num, labels)
        for start in range(0, num, batch):
            count = min(batch, num - start)
            z = self.latents(count, seed, truncation, start=start)
            yield self.decode(z, None if y is None else y[start : start + count])

    def labels_for(self, num: int, labels: Labels = None) -> np.ndarray | None:
        """int64 labels [num] for a conditional model (cycling through classes when None).

        One int is repeated; a sequence must have `num` entries. Unconditional models take
        no labels: passing any is an error.
        """
        meta = self.metadata
        if not meta.conditional:
            if labels is not None:
                raise GeneratorInputError(
                    "this generator is unconditional: it takes no label (drop --label)"
                )
            return None
        if labels is None:
            out = np.arange(num, dtype=np.int64) % meta.num_classes
        elif np.ndim(labels) == 0:
            out = np.full(num, int(labels), dtype=np.int64)  # type: ignore[arg-type]
        else:
            out = np.asarray(labels, dtype=np.int64).reshape(-1)
            if len(out) != num:
                raise GeneratorInputError(f"got {len(out)} labels for {num} samples")
        bad = out[(out < 0) | (out >= meta.num_classes)]
        if len(bad):
            raise GeneratorInputError(
                f"label {int(bad[0])} is out of range: this generator has {meta.num_classes} "
                f"classes (0..{meta.num_classes - 1})"
            )
        return out

    # ---- running ---------------------------------------------------------------------

    def run(self, z: np.ndarray, labels: Labels = None) -> np.ndarray:
        """Raw generator output for latents z [N, nz]: float32 [N, *sample_shape]."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise GeneratorInputError(f"latents must be [N, {self.nz}], got {list(z.shape)}")
        _check_count(len(z), "number of latents")
        y = self.labels_for(len(z), labels)
        chunks = []
        for start in range(0, len(z), self.batch_size):
            feed = {"z": z[start : start + self.batch_size]}
            if y is not None:
                feed["label"] = y[start : start + self.batch_size]
            chunks.append(self.session.run([self._output], feed)[0])
        out = np.concatenate(chunks)
        if out.shape[1:] != tuple(self.metadata.sample_shape):
            raise ModelFileError(
                f"the model's output {list(out.shape[1:])} per sample does not match the "
                f"sample_shape {list(self.metadata.sample_shape)} in its ganforge metadata: "
                "the file was altered; export it again (`dvc repro export`)"
            )
        return out

    def decode(self, z: np.ndarray, labels: Labels = None) -> np.ndarray:
        """Latents -> uint8 images [N, H, W, C] (or float32 points [N, D] for toy models)."""
        out = self.run(z, labels)
        return to_uint8(out, self.metadata.value_range) if self.metadata.is_image else out

    def sample(
        self, num: int, seed: int | None = 0, labels: Labels = None, truncation: float = 1.0
    ) -> np.ndarray:
        """`num` samples from `seed`: uint8 images [N, H, W, C], or points [N, D]."""
        return self.decode(self.latents(num, seed, truncation), labels)

    def interpolate(
        self,
        z0: np.ndarray,
        z1: np.ndarray,
        steps: int = 8,
        method: Method = "linear",
        labels: Labels = None,
    ) -> np.ndarray:
        """Samples along the path from z0 to z1 (`linear` or `slerp`), both ends included."""
        return self.decode(interpolate_latents(z0, z1, steps, method), labels)

    def arithmetic(
        self,
        plus: Sequence[np.ndarray],
        minus: Sequence[np.ndarray] = (),
        labels: Labels = None,
    ) -> np.ndarray:
        """Decode Σ mean(plus) − Σ mean(minus): DCGAN's vector arithmetic, one sample."""
        return self.decode(latent_arithmetic(plus, minus)[None], labels)


def to_uint8(
    samples: np.ndarray, value_range: tuple[float, float] | None = (-1.0, 1.0)
) -> np.ndarray:
    """float images [N, C, H, W] in `value_range` -> uint8 [N, H, W, C], clamped."""
    lo, hi = value_range or (-1.0, 1.0)
    scaled = (np.asarray(samples, np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def _check_graph_shapes(session: ort.InferenceSession, meta: ModelMetadata) -> None:
    """The graph's fixed dimensions must agree with the metadata a caller relies on."""
    z_shape = list(session.get_inputs()[0].shape or [])
    out_shape = list(session.get_outputs()[0].shape or [])
    if not out_shape:  # rank unknown: run() checks what comes out
        return
    problems = []
    if len(z_shape) == 2 and isinstance(z_shape[1], int) and z_shape[1] != meta.nz:
        problems.append(f"input z is [batch, {z_shape[1]}] but nz = {meta.nz}")
    fixed = out_shape[1:]
    if len(fixed) != len(meta.sample_shape) or any(
        isinstance(d, int) and d != m for d, m in zip(fixed, meta.sample_shape, strict=False)
    ):
        problems.append(f"output is {out_shape} but sample_shape = {list(meta.sample_shape)}")
    if problems:
        raise ModelFileError(
            "its ganforge metadata does not match its graph ("
            + "; ".join(problems)
            + "): export the generator again (`dvc repro export`)"
        )


def _check_count(num: int, what: str) -> None:
    if int(num) != num or num < 1:
        raise GeneratorInputError(f"{what} = {num}: must be a positive integer")
