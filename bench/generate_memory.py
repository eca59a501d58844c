"""Peak memory of `ganforge generate` at the largest requests it allows.

    .venv/bin/python bench/generate_memory.py                       # grid 4096, folder 1k..16k
    .venv/bin/python bench/generate_memory.py --folder-num 1000000  # the folder limit (slow)

Exports a random-weight DCGAN generator shaped like the default params (nz 100, ngf 32,
32x32 grey; or --size/--channels) once under /tmp/ganforge_bench, then runs each request in
a fresh child process and prints that child's peak resident set size during the request
(VmHWM, reset after the model is loaded) next to its size after loading the model. A PNG
grid is capped at MAX_GRID images; larger requests stream to a folder in batches, so their
peak must not grow with --num.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path("/tmp/ganforge_bench/generate")


def build_model(size: int, channels: int) -> Path:
    """The ONNX generator to serve (reused when it exists)."""
    path = BENCH_DIR / f"dcgan_{channels}x{size}.onnx"
    if path.is_file():
        return path
    from ganforge.export import build_metadata, export_generator
    from ganforge.models import GeneratorSpec, build_generator

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    spec = GeneratorSpec(arch="dcgan", nz=100, sample_shape=(channels, size, size), ngf=32, ndf=32)
    meta = build_metadata(spec, {"weights": "raw", "run_id": "bench"})
    export_generator(build_generator(spec).eval(), spec, path, opset=18, metadata=meta)
    return path


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(model: str, num: int, out: str) -> None:
    """Run one `ganforge generate` in this process; print its RSS after load and its peak.

    Loading onnxruntime has a transient peak of its own: the high-water mark is reset
    (/proc/self/clear_refs) after the load, so the peak printed is that of the request.
    """
    from ganforge.cli import app
    from ganforge.inference import Generator

    Generator.load(model, provider="cpu")  # what every request pays before sampling
    Path("/proc/self/clear_refs").write_text("5")
    loaded = _status_mib("VmRSS")
    start = time.perf_counter()
    args = ["generate", "-m", model, "-n", str(num), "-o", out, "--provider", "cpu"]
    try:
        app(args, standalone_mode=False)
    except SystemExit as exit_:
        if exit_.code:
            raise
    seconds = time.perf_counter() - start
    print(json.dumps({"loaded_mib": loaded, "peak_mib": _status_mib("VmHWM"), "seconds": seconds}))


def measure(model: Path, num: int, out: Path) -> dict[str, float]:
    code = f"import sys; sys.path[:0] = {sys.path!r}; import generate_memory as g; g.child(*sys.argv[1:2], int(sys.argv[2]), sys.argv[3])"  # noqa: E501
    result = subprocess.run(
        [sys.executable, "-c", code, str(model), str(num), str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"generate --num {num} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    from ganforge.cli import MAX_FOLDER, MAX_GRID, STREAM_BATCH

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--folder-num", type=int, nargs="*", default=[1024, 4096, 16384])
    args = parser.parse_args()
    model = build_model(args.size, args.channels)
    print(
        f"model {model.name}; grid cap {MAX_GRID}, folder cap {MAX_FOLDER}, "
        f"batch {STREAM_BATCH} (timings on a shared machine are indicative only)"
    )
    print(f"{'request':<28}{'after load MiB':>16}{'peak MiB':>10}{'seconds':>9}")
    out_dir = BENCH_DIR / "out"
    requests = [(MAX_GRID, out_dir / "grid.png")]
    requests += [(n, out_dir / f"folder_{n}") for n in args.folder_num]
    for num, out in requests:
        if out.is_dir():
            for old in out.glob("*.png"):
                old.unlink()
        out.parent.mkdir(parents=True, exist_ok=True)
        row = measure(model, num, out)
        kind = "grid .png" if out.suffix else "folder"
        print(
            f"{num:>8} -> {kind:<16}{row['loaded_mib']:>16.0f}{row['peak_mib']:>10.0f}"
            f"{row['seconds']:>9.1f}"
        )


if __name__ == "__main__":
    main()
