"""An exported ganforge generator, run with onnxruntime: sampling, walks, latent arithmetic."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import onnxruntime as ort

from ganforge.inference import prng
from ganforge.inference.arithmetic import MAX_PER_CLASS, ClassArithmetic
from ganforge.inference.checks import (
    NO_CLASSES,
    GeneratorInputError,
    check_count,
    check_graph_shapes,
    check_label,
)
from ganforge.inference.grid import to_uint8
from ganforge.inference.latent import (
    Method,
    arithmetic_table,
    interpolate_latents,
    latent_arithmetic,
    place_in_class,
)
from ganforge.inference.metadata import ModelMetadata
from ganforge.inference.session import (
    CPU,
    PROVIDERS,
    ModelFileError,
    Provider,
    ProviderError,
    create_session,
    load_model_bytes,
)

Labels = int | Sequence[int] | np.ndarray | None

# Float32 values one run may return (128 MiB): large samples run in smaller batches.
RUN_BUDGET_VALUES = 2**25


class Generator:
    """A generator exported by `ganforge.export`, ready to sample.

    Images come back as uint8 [N, H, W, C] (HWC, as PIL and most apps expect); toy point
    generators return float32 points [N, D]. Latents are standard normal, drawn from `seed`
    with ganforge's portable generator (`ganforge.inference.prng`), so a seed gives the same
    samples on every machine and in the browser page.

    On the CPU, a batch of at least two samples per worker is split across `workers` threads,
    each running its slice on `worker_session` (the same model with one intra-op thread):
    onnxruntime parallelises a DCGAN generator's layers poorly over threads, and slices of a
    batch side by side scale better (bench/onnx_latency.py, rows `ort` and `ganforge`).
    Smaller batches run on `session` with its own threads. Each sample's output does not
    depend on the batch it ran in, so the split changes no byte.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: ModelMetadata,
        batch_size: int = 256,
        *,
        workers: int = 1,
        worker_session: ort.InferenceSession | None = None,
    ) -> None:
        if workers > 1 and worker_session is None:
            raise ValueError("workers > 1 needs a worker_session (one intra-op thread)")
        self.session = session
        self.metadata = metadata
        # Bounded memory per run, whatever the sample size the file declares.
        self.batch_size = max(1, min(batch_size, RUN_BUDGET_VALUES // metadata.sample_values))
        self.model_bytes: bytes | None = None  # the checked file, when loaded by `load`
        self.workers = workers if worker_session is not None else 1
        self._worker_session = worker_session
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        names = [i.name for i in session.get_inputs()]
        if names != list(metadata.input_names):
            raise ModelFileError(
                f"model inputs {names} do not match its metadata {list(metadata.input_names)}"
            )
        self._output = session.get_outputs()[0].name
        check_graph_shapes(session, metadata)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        provider: Provider = "auto",
        threads: int | None = None,
    ) -> Generator:
        """Open an exported generator; `provider` auto picks CUDA only where it really runs.

        `threads`: the CPU threads to use (default: every core this process may run on). On
        the CPU, more than one also opens a one-thread session for the batch split (see the
        class); on CUDA it is onnxruntime's intra-op thread count.
        """
        if threads is not None and threads < 1:
            raise GeneratorInputError(f"threads = {threads}: must be at least 1")
        if provider not in PROVIDERS:
            raise ProviderError(f"provider {provider!r}: use one of {', '.join(PROVIDERS)}")
        workers = threads or _usable_cores()
        # Read and checked once (no external data, bounded metadata); both sessions get
        # these bytes, so what runs is what was checked.
        data = load_model_bytes(path)
        name = str(path)
        # With a batch split, the small batches' session must not keep its threads spinning
        # after a run: they would take the cores from the slices of the next large batch.
        session = create_session(data, provider, threads, spinning=workers == 1, name=name)
        props = session.get_modelmeta().custom_metadata_map
        try:
            metadata = ModelMetadata.from_props(dict(props))
        except ValueError as err:
            raise ModelFileError(f"{path}: {err}") from None
        worker_session = None
        if workers > 1 and session.get_providers()[0] == CPU:
            worker_session = create_session(data, "cpu", threads=1, name=name)
        try:
            gen = cls(
                session,
                metadata,
                workers=workers if worker_session else 1,
                worker_session=worker_session,
            )
        except ModelFileError as err:
            raise ModelFileError(f"{path}: {err}") from None
        gen.model_bytes = data
        return gen

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
        check_count(num, "num")
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
        check_count(num, "num")
        if seed is None:
            seed = int(np.random.default_rng().integers(0, prng.MAX_SEED))
        y = self.labels_for(num, labels)
        for start in range(0, num, batch):
            count = min(batch, num - start)
            z = self.latents(count, seed, truncation, start=start)
            yield self.decode(z, None if y is None else y[start : start + count])

    def labels_for(self, num: int, labels: Labels = None) -> np.ndarray | None:
        """int64 labels [num] for a model with classes, or None.

        One int is repeated; a sequence must have `num` entries. Without labels, a
        conditional model cycles through its classes and a latent-class model draws each
        class from its latent (None). A model without classes takes no labels: passing any
        is an error.
        """
        meta = self.metadata
        if not meta.has_classes:
            if labels is not None:
                raise GeneratorInputError(f"{NO_CLASSES}: it takes no label")
            return None
        if labels is None:
            if meta.latent_class:
                return None
            return np.arange(num, dtype=np.int64) % meta.num_classes
        if isinstance(labels, np.ndarray) and labels.dtype.kind not in "iu":
            raise GeneratorInputError(f"labels must be integers, got {labels.dtype} values")
        if np.ndim(labels) == 0:
            return np.full(num, check_label(labels, meta.num_classes), dtype=np.int64)
        values = np.asarray(labels, dtype=object).ravel()
        if len(values) != num:
            raise GeneratorInputError(f"got {len(values)} labels for {num} samples")
        return np.asarray([check_label(v, meta.num_classes) for v in values], dtype=np.int64)

    # ---- running ---------------------------------------------------------------------

    def run(self, z: np.ndarray, labels: Labels = None) -> np.ndarray:
        """Raw generator output for latents z [N, nz]: float32 [N, *sample_shape].

        `labels` for a latent-class model replace each z₀ by its place in the class's
        interval (`ganforge.inference.latent.place_in_class`).
        """
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise GeneratorInputError(f"latents must be [N, {self.nz}], got {list(z.shape)}")
        check_count(len(z), "number of latents")
        y = self.labels_for(len(z), labels)
        if y is not None and self.metadata.latent_class:
            # The class is asked of z itself: z₀ moves into the class's interval.
            z = z.copy()
            z[:, 0] = place_in_class(z[:, 0], y, self.metadata.class_prior)
            y = None
        chunks = []
        for start in range(0, len(z), self.batch_size):
            feed = {"z": z[start : start + self.batch_size]}
            if y is not None:
                feed["label"] = y[start : start + self.batch_size]
            chunks.append(self._run_batch(feed))
        out = np.concatenate(chunks)
        if out.shape[1:] != tuple(self.metadata.sample_shape):
            raise ModelFileError(
                f"the model's output {list(out.shape[1:])} per sample does not match the "
                f"sample_shape {list(self.metadata.sample_shape)} in its ganforge metadata: "
                "the file was altered; export it again (`dvc repro export`)"
            )
        return out

    def _run_batch(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """One batch: on `session`, or split into `workers` slices run side by side."""
        n, session = len(feed["z"]), self._worker_session
        if session is None or n < 2 * self.workers:
            return self.session.run([self._output], feed)[0]
        bounds = np.linspace(0, n, self.workers + 1).astype(int)
        slices = [{k: v[a:b] for k, v in feed.items()} for a, b in pairwise(bounds)]
        parts = self._executor().map(lambda f: session.run([self._output], f)[0], slices)
        return np.concatenate(list(parts))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:  # the server calls run() from several threads at once
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ganforge-ort")
            return self._pool

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

    def class_arithmetic(
        self,
        a: int,
        b: int,
        c: int,
        per_class: int = 3,
        seed: int | None = 0,
        truncation: float = 1.0,
    ) -> ClassArithmetic:
        """Class a − class b + class c on averaged latents (Radford et al. 2015, sec. 6.3).

        Each class's `per_class` samples are latents k·MAX_PER_CLASS onward of `seed`'s
        stream (k the class), decoded in that class, and so is their mean; then mean(a) −
        mean(b) + mean(c) and, per column, a_j − b_j + c_j are decoded as class c
        (`ganforge.inference.latent.arithmetic_table` gives the latents).

        The label is the class and the arithmetic acts on z, as in a conditional model, whose
        label is an input beside z: the result takes c's label, so that a − b + c reads "c,
        moved by what sets a's samples apart from b's", and a − a + c is c's mean. A
        latent-class model gets the same meaning: a class on request places z₀ in the class's
        interval (`run`), so the arithmetic runs on the seed's latents and the result's z₀ is
        placed in c's interval. Left free, that z₀ would land in a class fixed by the order
        of the class intervals, the arbitrary order of the class indices, which says nothing
        about a, b or c.
        """
        meta = self.metadata
        if not meta.is_image:
            raise GeneratorInputError(
                "this generator makes points, not images: class arithmetic draws images"
            )
        if not meta.has_classes:
            raise GeneratorInputError(
                f"{NO_CLASSES}: class arithmetic needs a conditional or latent-class model"
            )
        classes = (
            check_label(a, meta.num_classes),
            check_label(b, meta.num_classes),
            check_label(c, meta.num_classes),
        )
        check_count(per_class, "per_class")
        if per_class > MAX_PER_CLASS:
            raise GeneratorInputError(
                f"per_class = {per_class}: at most {MAX_PER_CLASS} samples per class (one grid row)"
            )
        if seed is None:
            seed = int(np.random.default_rng().integers(0, prng.MAX_SEED))
        z = [self.latents(per_class, seed, truncation, k * MAX_PER_CLASS) for k in classes]
        table = arithmetic_table(np.stack(z))
        labels = (*classes, classes[2])
        images = self.decode(
            table.reshape(-1, self.nz), np.repeat(np.asarray(labels, np.int64), per_class + 1)
        )
        return ClassArithmetic(
            classes=classes,
            labels=labels,
            seed=seed,
            latents=table,
            images=images.reshape(4, per_class + 1, *images.shape[1:]),
        )


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
