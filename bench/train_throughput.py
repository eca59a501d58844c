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
                                     [--compile] [--ablation]

prints images/s of each and its ratio to the examples loop, per image size (median over
rounds; each round runs every contender for the same number of steps in turn, so that a
shared machine's load hits all alike). `--ablation` adds the examples loop with ganforge's
differences switched on one at a time (in-memory batches, channels_last, D frozen in G's
step), which shows where the ratio comes from.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
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


def digits(size: int) -> torch.Tensor:
    """scikit-learn's 1797 digits as uint8 [N, 1, size, size]."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


class PerSampleDataset(Dataset):
    """What torchvision's MNIST hands the example's loop: a PIL image through its transforms."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.squeeze(1).numpy()
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
        return self.transform(Image.fromarray(self.images[i], mode="L")), 0


def reference_run(
    images: torch.Tensor,
    config: TrainConfig,
    workers: int | None,
    *,
    channels_last: bool = False,
    freeze_d: bool = False,
) -> Callable[[int], None]:
    """The examples' loop body, verbatim in spirit (BCE, real then fake D passes, G on D(fake)).

    `workers=None` replaces the DataLoader by batches indexed from one float tensor;
    `channels_last` and `freeze_d` switch on ganforge's other two differences one at a time
    (the `--ablation` columns), so that each one's share of the ratio can be read off.
    """
    torch.manual_seed(0)
    size = images.shape[-1]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net_g = DCGANGenerator(config.nz, 1, size, config.ngf).to(memory_format=fmt)
    net_d = DCGANDiscriminator(1, size, config.ndf).to(memory_format=fmt)
    criterion = torch.nn.BCEWithLogitsLoss()
    betas = (config.beta1, config.beta2)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=config.lr_d, betas=betas)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=config.lr_g, betas=betas)
    if workers is None:
        batches = in_memory_batches(images, config.batch_size, fmt)
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
        b = real.size(0)
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        net_d.zero_grad()
        err_real = criterion(net_d(real), torch.ones(b))
        err_real.backward()
        fake = net_g(torch.randn(b, config.nz))
        err_fake = criterion(net_d(fake.detach()), torch.zeros(b))
        err_fake.backward()
        opt_d.step()
        # (2) update G: maximize log(D(G(z)))
        net_g.zero_grad()
        net_d.requires_grad_(not freeze_d)
        err_g = criterion(net_d(fake), torch.ones(b))
        err_g.backward()
        net_d.requires_grad_(True)
        opt_g.step()

    return run


def in_memory_batches(
    images: torch.Tensor, batch_size: int, fmt: torch.memory_format
) -> Iterator[torch.Tensor]:
    """Endless shuffled batches indexed from the whole data set as one float tensor."""
    data = images.float().div(127.5).sub(1.0)
    while True:
        order = torch.randperm(len(data))
        for start in range(0, len(data) - batch_size + 1, batch_size):
            yield data[order[start : start + batch_size]].contiguous(memory_format=fmt)


def ganforge_run(images: torch.Tensor, config: TrainConfig) -> Callable[[int], None]:
    trainer = GANTrainer(config, make_spec(config, images.shape[1:]), images, seed=0)

    def run(n: int) -> None:
        for _ in range(n):
            trainer.train_step()

    return run


def measure(runs: dict[str, Callable[[int], None]], n: int, rounds: int) -> dict[str, float]:
    """Median seconds per step of each over `rounds` rounds of `n` steps, taken in turn.

    Each round starts with the next contender (rotated order), so that none always runs
    first or right after the same neighbour on a shared machine.
    """
    for run in runs.values():
        run(2)  # warm-up: allocator, oneDNN kernels, worker start-up paths
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            runs[name](n)
            times[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(t) for name, t in times.items()}


def contenders(
    images: torch.Tensor, config: TrainConfig, compile_too: bool, ablation: bool
) -> dict[str, Callable[[int], None]]:
    """Name -> run(n) for one image size; 'examples' first (the ratios' denominator)."""
    runs = {
        "examples": reference_run(images, config, workers=2),
        "examples 0 workers": reference_run(images, config, workers=0),
    }
    if ablation:
        runs["+ in-memory batches"] = reference_run(images, config, workers=None)
        runs["+ channels_last"] = reference_run(images, config, None, channels_last=True)
        runs["+ D frozen in G step"] = reference_run(
            images, config, None, channels_last=True, freeze_d=True
        )
    runs["ganforge"] = ganforge_run(images, config)
    if compile_too:
        runs["ganforge compiled"] = ganforge_run(
            images, config.model_copy(update={"compile": True})
        )
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(
        ngf=args.width,
        ndf=args.width,
        batch_size=args.batch_size,
        device="cpu",
        ema_decay=None,
        amp="off",
    )
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch_size}, "
        f"ngf=ndf={args.width}, median of {args.rounds} rounds of {args.steps} steps"
    )
    for size in args.sizes:
        runs = contenders(digits(size), config, args.compile, args.ablation)
        median = measure(runs, args.steps, args.rounds)
        base = args.batch_size / median["examples"]
        print(f"\n{size}x{size}   {'img/s':>8}  {'x examples':>10}")
        for name, seconds in median.items():
            rate = args.batch_size / seconds
            print(f"  {name:<22} {rate:>8.1f}  {rate / base:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
