"""Peak memory of `prepare` on a generated image folder: bounded by the chunk, not the data.

    .venv/bin/python bench/prepare_memory.py                 # 20k 64x64 RGB PNGs, 10 classes
    .venv/bin/python bench/prepare_memory.py --num-images 5000 --chunk-size 256

Generates the PNGs once under /tmp/ganforge_bench (reused by later runs), then runs
`prepare_dataset` in a fresh child process and reports that process's peak resident set
size (ru_maxrss: anonymous and file-backed pages alike) against its resident size right
after imports and against the size of the store it wrote.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path("/tmp/ganforge_bench")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generate(folder: Path, num_images: int, size: int) -> None:
    """`num_images` PNGs in 10 class folders: colour gradients plus noise (not trivially small)."""
    from PIL import Image

    done = folder / ".complete"
    if done.exists() and done.read_text() == str(num_images):
        return
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    start = time.perf_counter()
    for i in range(num_images):
        label = i % 10
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        base = ramp[:, None, None] * colour + ramp[None, :, None] * (255 - colour)
        pixels = np.clip(base / 2 + rng.normal(0, 20, size=(size, size, 3)), 0, 255)
        path = folder / f"class{label}" / f"{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path, compress_level=1)
    done.write_text(str(num_images))
    print(f"generated {num_images} PNGs in {folder} ({time.perf_counter() - start:.0f} s)")


def child(args: argparse.Namespace) -> None:
    from ganforge.config import PrepareConfig
    from ganforge.data import prepare_dataset

    config = PrepareConfig(
        dataset="image_folder",
        root=str(args.folder),
        image_size=args.size,
        channels=args.channels,
        chunk_size=args.chunk_size,
        workers=args.workers,
    )
    after_imports = _rss_mib()
    start = time.perf_counter()
    meta = prepare_dataset(config, seed=0, out_dir=args.out)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store = sum(p.stat().st_size for p in Path(args.out).glob("*.pt")) / 2**20
    result = {"after_imports_mib": after_imports, "peak_mib": peak, "store_mib": store}
    result.update({"seconds": seconds, "images": sum(meta["splits"].values())})
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=64, help="generated and prepared image size")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    folder = BENCH_DIR / f"images_{args.num_images}_{args.size}"
    generate(folder, args.num_images, args.size)
    out = BENCH_DIR / "prepared"
    command = [
        sys.executable,
        __file__,
        "--child",
        f"--folder={folder}",
        f"--out={out}",
        f"--size={args.size}",
        f"--channels={args.channels}",
        f"--chunk-size={args.chunk_size}",
        f"--workers={args.workers}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    chunk_mib = args.chunk_size * args.channels * args.size**2 / 2**20
    print(
        f"prepare {result['images']} images {args.channels}x{args.size}x{args.size} "
        f"(chunk_size {args.chunk_size} = {chunk_mib:.1f} MiB of pixels, {args.workers} workers) "
        f"in {result['seconds']:.1f} s\n"
        f"  store written:          {result['store_mib']:8.1f} MiB\n"
        f"  RSS after imports:      {result['after_imports_mib']:8.1f} MiB\n"
        f"  peak RSS (ru_maxrss):   {result['peak_mib']:8.1f} MiB\n"
        f"  peak above imports:     {result['peak_mib'] - result['after_imports_mib']:8.1f} MiB"
    )


if __name__ == "__main__":
    main()
