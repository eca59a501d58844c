"""Training throughput: ganforge's step against a PyTorch-examples-style DCGAN loop.

Same data (scikit-learn digits, resized), same architecture (ganforge's DCGAN G and D), same
batch, same Adam, same thread count; only the training path differs:

* reference (pytorch/examples dcgan/main.py): a per-sample `Dataset` that hands out PIL
  images through the example's transforms (Resize, CenterCrop, ToTensor, Normalize) and a
  `DataLoader` with the example's default 2 workers (also shown with 0 workers), float tensors
  in the default memory layout, D run separately on the real and the fake batch, fakes made
  once and reused for G's step, D's weight gradients computed in G's step;
* ganforge (`GANTrainer.train_step`): the uint8 store indexed in memory by a permutation,
  channels_last, D weights frozen during G's step.

    python bench/train_throughput.py [--sizes 32 64] [--steps 19] [--threads 2]
                                     [--compile] [--ablation] [--bf16] [--device cuda]
                                     [--channels 3] [--width 64] [--batch-size 64]

prints images/s of each and its ratio to the examples loop, per image size (median over
rounds; each round runs every contender for the same number of steps in turn, so that a
shared machine's load hits all alike). `--ablation` adds the examples loop with ganforge's
differences switched on one at a time (in-memory batches, channels_last, D frozen in G's
step), which shows where the ratio comes from. `--bf16` adds ganforge's step under bf16
autocast (`train.amp: bf16`, `auto`'s choice for images on a CPU with bf16 units) beside fp32.

`--device cuda` runs both loops on the GPU (the examples loop copies each DataLoader batch to
it, as the example does; ganforge uses its per-device defaults: fp32 with TF32, NCHW) and adds
the share of the step the GPU is busy: kernel and copy time per step from torch.profiler over
one extra round, divided by the median step's wall time. Timings synchronize the device.
`--channels 3` repeats the digits to RGB (the 64 px RGB case measured in issue #13).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganforge.config import TrainConfig
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.training import GANTrainer, make_spec

CPU = torch.device("cpu")


def digits(size: int, channels: int = 1) -> torch.Tensor:
    """scikit-learn's 1797 digits as uint8 [N, channels, size, size] (RGB: gray repeated)."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, channels, 1, 1)


class PerSampleDataset(Dataset):
    """What torchvision's MNIST hands the example's loop: a PIL image through its transforms."""

    def __init__(self, images: torch.Tensor) -> None:
        # PIL wants [H, W] for gray ("L") and [H, W, 3] for RGB.
        self.mode = "L" if images.shape[1] == 1 else "RGB"
        self.images = (
            images.squeeze(1).numpy() if self.mode == "L" else images.permute(0, 2, 3, 1).numpy()
        )
        size = images.shape[-1]
        self.transform = transforms.Compose(
            [
                transforms.Resize(size),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
                transforms.Normalize((0.5,), (0.5,)),
            ]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i], mode=self.mode)), 0


def reference_run(
    images: torch.Tensor,
    config: TrainConfig,
    workers: int | None,
    *,
    device: torch.device = CPU,
    channels_last: bool = False,
    freeze_d: bool = False,
) -> Callable[[int], None]:
    """The examples' loop body, verbatim in spirit (BCE, real then fake D passes, G on D(fake)).

    `workers=None` replaces the DataLoader by batches indexed from one float tensor;
    `channels_last` and `freeze_d` switch on ganforge's other two differences one at a time
    (the `--ablation` columns), so that each one's share of the ratio can be read off.
    """
    torch.manual_seed(0)
    channels, size = images.shape[1], images.shape[-1]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net_g = DCGANGenerator(config.nz, channels, size, config.ngf).to(device, memory_format=fmt)
    net_d = DCGANDiscriminator(channels, size, config.ndf).to(device, memory_format=fmt)
    criterion = torch.nn.BCEWithLogitsLoss()
    betas = (config.beta1, config.beta2)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=config.lr_d, betas=betas)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=config.lr_g, betas=betas)
    if workers is None:
        batches = in_memory_batches(images, config.batch_size, fmt, device)
    else:
        loader = DataLoader(
            PerSampleDataset(images),
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
        )
        # A fresh pass over the loader each epoch, like the example (workers start anew).
        batches = (real for real, _ in itertools.chain.from_iterable(itertools.repeat(loader)))

    def run(n: int) -> None:
        for real in itertools.islice(batches, n):
            step(real)

    def step(real: torch.Tensor) -> None:
        real = real.to(device)  # the example's `data[0].to(device)`; a no-op on the CPU
        b = real.size(0)
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        net_d.zero_grad()
        err_real = criterion(net_d(real), torch.ones(b, device=device))
        err_real.backward()
        fake = net_g(torch.randn(b, config.nz, device=device))
        err_fake = criterion(net_d(fake.detach()), torch.zeros(b, device=device))
        err_fake.backward()
        opt_d.step()
        # (2) update G: maximize log(D(G(z)))
        net_g.zero_grad()
        net_d.requires_grad_(not freeze_d)
        err_g = criterion(net_d(fake), torch.ones(b, device=device))
        err_g.backward()
        net_d.requires_grad_(True)
        opt_g.step()

    return run


def in_memory_batches(
    images: torch.Tensor,
    batch_size: int,
    fmt: torch.memory_format,
    device: torch.device = CPU,
) -> Iterator[torch.Tensor]:
    """Endless shuffled batches indexed from the whole data set as one float tensor."""
    data = images.to(device).float().div(127.5).sub(1.0)
    while True:
        order = torch.randperm(len(data), device=device)
        for start in range(0, len(data) - batch_size + 1, batch_size):
            yield data[order[start : start + batch_size]].contiguous(memory_format=fmt)


def ganforge_run(images: torch.Tensor, config: TrainConfig) -> Callable[[int], None]:
    trainer = GANTrainer(config, make_spec(config, images.shape[1:]), images, seed=0)

    def run(n: int) -> None:
        for _ in range(n):
            trainer.train_step()

    return run


def measure(
    runs: dict[str, Callable[[int], None]],
    n: int,
    rounds: int,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Median seconds per step of each over `rounds` rounds of `n` steps, taken in turn.

    Each round starts with the next contender (rotated order), so that none always runs
    first or right after the same neighbour on a shared machine. `sync` waits for queued
    device work (torch.cuda.synchronize on a GPU) so that a round ends when its work does.
    """
    for run in runs.values():
        run(2)  # warm-up: allocator, oneDNN / cuDNN kernels, worker start-up paths
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync()
            start = time.perf_counter()
            runs[name](n)
            sync()
            times[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(t) for name, t in times.items()}


def gpu_seconds_per_step(run: Callable[[int], None], n: int) -> float:
    """GPU time (kernels and copies) per step over `n` steps, from torch.profiler.

    Kernel durations are GPU-side and unaffected by the profiler's host overhead; the busy
    share divides them by the unprofiled step time from `measure`, which that overhead
    cannot inflate.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run(n)
        torch.cuda.synchronize()
    # The same sum as the profiler table's "Self CUDA time total" (kineto device events).
    busy_us = sum(
        e.self_device_time_total
        for e in prof.key_averages()
        if e.device_type == DeviceType.CUDA and not e.is_user_annotation
    )
    return busy_us / 1e6 / n


def contenders(
    images: torch.Tensor,
    config: TrainConfig,
    compile_too: bool,
    ablation: bool,
    bf16_too: bool = False,
) -> dict[str, Callable[[int], None]]:
    """Name -> run(n) for one image size; 'examples' first (the ratios' denominator)."""
    dev = torch.device(config.device)
    runs = {
        "examples": reference_run(images, config, workers=2, device=dev),
        "examples 0 workers": reference_run(images, config, workers=0, device=dev),
    }
    if ablation:
        runs["+ in-memory batches"] = reference_run(images, config, None, device=dev)
        runs["+ channels_last"] = reference_run(
            images, config, None, device=dev, channels_last=True
        )
        runs["+ D frozen in G step"] = reference_run(
            images, config, None, device=dev, channels_last=True, freeze_d=True
        )
    runs["ganforge"] = ganforge_run(images, config)
    if compile_too:
        runs["ganforge compiled"] = ganforge_run(
            images, config.model_copy(update={"compile": True})
        )
    if bf16_too:
        runs["ganforge bf16"] = ganforge_run(images, config.model_copy(update={"amp": "bf16"}))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=19, help="steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time ganforge with train.compile: true (the first steps compile, ~1 min)",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time the examples loop with ganforge's differences added one at a time",
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="also time ganforge with train.amp: bf16 (autocast; fast on CPUs with bf16 units)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where both loops run; cuda also prints the share of the step the GPU is busy",
    )
    parser.add_argument(
        "--channels", type=int, choices=[1, 3], default=1, help="1: gray digits; 3: as RGB"
    )
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit(
            "--device cuda: this machine has no usable GPU (torch.cuda.is_available() is "
            "False); run it on a CUDA machine or leave --device out"
        )
    torch.set_num_threads(args.threads)
    config = TrainConfig(
        ngf=args.width,
        ndf=args.width,
        batch_size=args.batch_size,
        device=args.device,
        ema_decay=None,
        # CPU: fp32, the baseline (--bf16 adds the bf16 contender); CUDA: ganforge's default
        # there (fp32 with TF32).
        amp="auto" if cuda else "off",
    )
    where = torch.cuda.get_device_name() if cuda else f"{args.threads} thread(s)"
    print(
        f"torch {torch.__version__}, {where}, batch {args.batch_size}, "
        f"ngf=ndf={args.width}, median of {args.rounds} rounds of {args.steps} steps"
    )
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for size in args.sizes:
        runs = contenders(
            digits(size, args.channels), config, args.compile, args.ablation, args.bf16
        )
        median = measure(runs, args.steps, args.rounds, sync)
        base = args.batch_size / median["examples"]
        busy_column = f"  {'GPU busy':>8}" if cuda else ""
        print(f"\n{size}x{size}   {'img/s':>8}  {'x examples':>10}{busy_column}")
        for name, seconds in median.items():
            rate = args.batch_size / seconds
            busy = ""
            if cuda:
                share = gpu_seconds_per_step(runs[name], args.steps) / seconds
                busy = f"  {share:>8.0%}"
            print(f"  {name:<22} {rate:>8.1f}  {rate / base:>10.2f}{busy}", flush=True)


if __name__ == "__main__":
    main()
