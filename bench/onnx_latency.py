"""onnxruntime vs PyTorch eager on the default DCGAN generator, side by side in one run.

    .venv/bin/python bench/onnx_latency.py [--repeats 20] [--image-size 32] [--ngf 64]
                                           [--threads N] [--batches 1 64 256]

The generator is the params.yaml default (nz 100, 1 channel, 32×32) at the issue's width
(ngf 64), untrained, with weights spread wider than DCGAN's init and BatchNorm statistics drawn
at random so that the parity check sees images, not a flat grey (the cost of a forward pass
does not depend on the weights' values). Three
contenders on the CPU, called in turn within each round so that a busy machine slows them
alike:

  eager      the PyTorch module (torch's own thread count, or --threads)
  ort        the exported file as `dvc repro export` writes it (ConvTranspose nodes)
  ort-subpx  the file exported with `subpixel=True`: each stride-2 ConvTranspose rewritten as
             an exact 3×3 Conv + DepthToSpace (BatchNorm and ReLU folded into the Conv)

Wall-clock per call: median and best over --repeats rounds. Then the same with one thread each,
timed as the calling thread's CPU time, which other processes on the machine barely disturb:
the figure to trust on a shared machine. Target (issue #14): onnxruntime at least 2× eager at
batch 64, parity within 1e-4.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ganforge.export import build_metadata, check_parity, export_generator
from ganforge.models import GeneratorSpec, build_generator

TARGET_BATCH, TARGET_SPEEDUP, PARITY_ATOL = 64, 2.0, 1e-4


def _session(path: Path, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rounds(
    contenders: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Seconds per call of each contender, interleaved round by round after one warm-up."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return times


def _contenders(G, paths: dict[str, Path], batch: int, nz: int, threads: int | None):
    z = np.random.default_rng(batch).standard_normal((batch, nz), dtype=np.float32)
    tz = torch.from_numpy(z)

    def eager() -> object:
        with torch.inference_mode():
            return G(tz)

    out: dict[str, Callable[[], object]] = {"eager": eager}
    for name, path in paths.items():
        session = _session(path, threads)
        out[name] = lambda s=session: s.run(None, {"z": z})
    return out


def _table(title: str, results: dict[int, dict[str, list[float]]], names: list[str]) -> None:
    print(title)
    head = f"{'batch':>5} {'eager ms':>9}"
    for name in names[1:]:
        head += f" {name + ' ms':>13} {'× eager':>8}"
    print(head + "   (median; best in brackets)")
    for batch, times in results.items():
        eager_med, eager_best = statistics.median(times["eager"]), min(times["eager"])
        row = f"{batch:>5} {eager_med * 1e3:>9.2f}"
        for name in names[1:]:
            med, best = statistics.median(times[name]), min(times[name])
            row += f" {med * 1e3:>13.2f} {eager_med / med:>7.2f}×"
            row += f" [{eager_best / best:.2f}×]"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds per batch size")
    parser.add_argument("--image-size", type=int, default=32, help="generator output size")
    parser.add_argument("--ngf", type=int, default=64, help="generator width")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset")
    parser.add_argument("--threads", type=int, default=None, help="threads for both runtimes")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = GeneratorSpec(
        arch="dcgan", nz=100, sample_shape=(1, args.image_size, args.image_size),
        ngf=args.ngf, ndf=args.ngf,
    )  # fmt: skip
    torch.manual_seed(0)
    G = build_generator(spec).eval()
    for module in G.modules():
        if isinstance(module, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(module.weight, 0.0, (2.0 / (module.in_channels * 4)) ** 0.5)
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    with tempfile.TemporaryDirectory() as tmp:
        paths, parity = {}, {}
        for name, subpixel in (("ort", False), ("ort-subpx", True)):
            paths[name] = export_generator(
                G, spec, Path(tmp) / f"{name}.onnx", opset=args.opset,
                metadata=build_metadata(spec), subpixel=subpixel,
            )  # fmt: skip
            report = check_parity(G, spec, paths[name], batches=[1, TARGET_BATCH])
            parity[name] = report.worst
        names = ["eager", *paths]
        wall = {
            b: _rounds(
                _contenders(G, paths, b, spec.nz, args.threads), args.repeats, time.perf_counter
            )  # fmt: skip
            for b in args.batches
        }
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cpu = {
            b: _rounds(
                _contenders(G, paths, b, spec.nz, 1), max(3, args.repeats // 4), time.thread_time
            )  # fmt: skip
            for b in args.batches
        }
        torch.set_num_threads(torch_threads)

    print(
        f"DCGAN G nz=100 ngf={args.ngf} 1×{args.image_size}×{args.image_size} | torch "
        f"{torch.__version__} ({torch_threads} threads) | onnxruntime {ort.__version__} | "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} | opset {args.opset}"
    )
    print("parity max |ORT − torch|: " + ", ".join(f"{k} {v:.2g}" for k, v in parity.items()))
    _table("\nwall-clock per call, default threads:", wall, names)
    _table("\nCPU time per call, one thread each (robust to other load):", cpu, names)
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(
            f"\nload average {load:.1f} on {os.cpu_count()} CPUs: the machine is oversubscribed, "
            "and eager's OpenMP threads suffer most; trust the CPU-time table"
        )
    for label, results in (("wall", wall), ("1-thread CPU", cpu)):
        if TARGET_BATCH not in results:
            continue
        times = results[TARGET_BATCH]
        best = max(names[1:], key=lambda n: statistics.median(times["eager"])
                   / statistics.median(times[n]))  # fmt: skip
        ratio = statistics.median(times["eager"]) / statistics.median(times[best])
        ok = ratio >= TARGET_SPEEDUP and parity[best] <= PARITY_ATOL
        print(
            f"batch {TARGET_BATCH}, {label}: best is {best} at {ratio:.2f}× eager, parity "
            f"{parity[best]:.2g}: {'meets' if ok else 'MISSES'} the {TARGET_SPEEDUP}× target"
        )


if __name__ == "__main__":
    main()
