"""onnxruntime vs PyTorch eager on the default DCGAN generator, side by side in one run.

    .venv/bin/python bench/onnx_latency.py [--repeats 50] [--image-size 32] [--threads N]

The generator is the params.yaml default (nz 100, ngf 64, 1 channel, 32×32), untrained: the
cost of a forward pass does not depend on the weights' values. Latency at batch 1 and
throughput at batch 64, median over `--repeats` calls after a warm-up, both on the CPU.
Target on a 2-core CPU: onnxruntime at least 1.5× faster than eager at batch 1.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from ganforge.export import build_metadata, check_parity, export_generator, measure_latency
from ganforge.models import GeneratorSpec, build_generator

TARGET_SPEEDUP_B1 = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per batch size")
    parser.add_argument("--image-size", type=int, default=32, help="generator output size")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = GeneratorSpec(
        arch="dcgan", nz=100, sample_shape=(1, args.image_size, args.image_size), ngf=64, ndf=64
    )
    torch.manual_seed(0)
    G = build_generator(spec).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_generator(
            G, spec, Path(tmp) / "g.onnx", opset=args.opset, metadata=build_metadata(spec)
        )
        parity = check_parity(G, spec, path, batches=[1, 64])
        result = measure_latency(G, spec, path, (1, 64), repeats=args.repeats, warmup=5)

    print(
        f"DCGAN G nz=100 ngf=64 1×{args.image_size}×{args.image_size} | torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads) | {os.cpu_count()} CPUs"
        f" | ORT provider {result['provider']} | opset {args.opset} | parity max|diff| "
        f"{parity.worst:.2g}"
    )
    print(
        f"{'batch':>5} {'ORT ms':>8} {'eager ms':>9} {'ORT img/s':>10} {'eager img/s':>12} "
        f"{'ORT/eager':>9} | best: {'ORT ms':>8} {'eager ms':>9} {'ORT/eager':>9}"
    )
    for batch in (1, 64):
        r = result[f"batch_{batch}"]
        print(
            f"{batch:>5} {r['ort_ms']:>8.3f} {r['torch_ms']:>9.3f} {r['ort_samples_per_s']:>10.0f}"
            f" {r['torch_samples_per_s']:>12.0f} {r['speedup']:>8.2f}× |       "
            f"{r['ort_best_ms']:>8.3f} {r['torch_best_ms']:>9.3f} {r['best_speedup']:>8.2f}×"
        )
    print("(median of the timed calls; best = the fastest call, least hurt by a busy CPU)")
    speedup = min(result["batch_1"]["speedup"], result["batch_1"]["best_speedup"])
    verdict = "meets" if speedup >= TARGET_SPEEDUP_B1 else "MISSES"
    print(f"batch-1 speedup {speedup:.2f}× {verdict} the {TARGET_SPEEDUP_B1}× target")


if __name__ == "__main__":
    main()
