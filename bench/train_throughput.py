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

    python bench/train_throughput.py [--sizes 32 64] [--steps 15] [--threads 2]

prints images/s of each (median over rounds; each round runs every contender for one
epoch's worth of steps in turn, so that a shared machine's load hits all alike and each
reference round pays its DataLoader's start, as every epoch of the example does) and the
ratio ganforge / reference per image size.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

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


def reference_run(images: torch.Tensor, config: TrainConfig, workers: int) -> Callable[[int], None]:
    """The examples' loop body, verbatim in spirit (BCE, real then fake D passes, G on D(fake))."""
    torch.manual_seed(0)
    size = images.shape[-1]
    net_g = DCGANGenerator(config.nz, 1, size, config.ngf)
    net_d = DCGANDiscriminator(1, size, config.ndf)
    criterion = torch.nn.BCEWithLogitsLoss()
    betas = (config.beta1, config.beta2)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=config.lr_d, betas=betas)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=config.lr_g, betas=betas)
    loader = DataLoader(
        PerSampleDataset(images),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
    )

    def run(n: int) -> None:
        # A fresh pass over the loader, like each epoch of the example (workers start anew).
        for real, _ in itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), n):
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
        err_g = criterion(net_d(fake), torch.ones(b))
        err_g.backward()
        opt_g.step()

    return run


def ganforge_run(images: torch.Tensor, config: TrainConfig) -> Callable[[int], None]:
    trainer = GANTrainer(config, make_spec(config, images.shape[1:]), images, seed=0)

    def run(n: int) -> None:
        for _ in range(n):
            trainer.train_step()

    return run


def measure(runs: dict[str, Callable[[int], None]], n: int, rounds: int) -> dict[str, float]:
    """Median seconds per step of each over `rounds` rounds of `n` steps, taken in turn."""
    for run in runs.values():
        run(2)  # warm-up: allocator, oneDNN kernels, worker start-up paths
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(n)
            times[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=19, help="steps per round (19: an epoch)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time ganforge with train.compile: true (the first steps compile, ~1 min)",
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
    print(
        f"{'size':>5} {'examples img/s':>15} {'(0 workers)':>12} {'ganforge img/s':>15} "
        f"{'ratio':>6} {'(vs 0 workers)':>15}" + (f" {'compiled img/s':>15} {'ratio':>6}"
        if args.compile else "")
    )  # fmt: skip
    for size in args.sizes:
        images = digits(size)
        runs = {
            "reference": reference_run(images, config, workers=2),
            "reference_0": reference_run(images, config, workers=0),
            "ganforge": ganforge_run(images, config),
        }
        if args.compile:
            runs["compiled"] = ganforge_run(images, config.model_copy(update={"compile": True}))
        median = measure(runs, args.steps, args.rounds)
        ref, ref0, ours = (
            args.batch_size / median[k] for k in ("reference", "reference_0", "ganforge")
        )
        line = (
            f"{size:>5} {ref:>15.1f} {ref0:>12.1f} {ours:>15.1f} {ours / ref:>6.2f} "
            f"{ours / ref0:>15.2f}"
        )
        if args.compile:
            compiled = args.batch_size / median["compiled"]
            line += f" {compiled:>15.1f} {compiled / ref:>6.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
