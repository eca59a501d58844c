"""Training throughput: ganforge's step against a PyTorch-examples-style DCGAN loop.

Same data (scikit-learn digits, resized), same architecture (ganforge's DCGAN G and D), same
batch, same Adam, same thread count; only the training path differs:

* reference (pytorch/examples dcgan/main.py): a per-sample `Dataset` through a `DataLoader`,
  float tensors in the default memory layout, D run separately on the real and the fake batch,
  fakes made once and reused for G's step;
* ganforge (`GANTrainer.train_step`): the uint8 store indexed in memory by a permutation,
  channels_last, one concatenated real+fake D forward, fresh noise for G's step (Algorithm 1).

    python bench/train_throughput.py [--sizes 32 64] [--steps 15] [--threads 2]

prints images/s of both (batch / median step time, the two steps interleaved so that a
shared machine's load hits both alike) and their ratio per image size.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

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
    """What an ImageFolder + ToTensor + Normalize pipeline hands the loop: one float image."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].float().div(255).sub(0.5).div(0.5), 0


def reference_step(images: torch.Tensor, config: TrainConfig) -> Callable[[], None]:
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
        PerSampleDataset(images), batch_size=config.batch_size, shuffle=True, drop_last=True
    )
    batches = itertools.chain.from_iterable(itertools.repeat(loader))

    def step() -> None:
        real, _ = next(batches)
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

    return step


def ganforge_step(images: torch.Tensor, config: TrainConfig) -> Callable[[], None]:
    trainer = GANTrainer(config, make_spec(config, images.shape[1:]), images, seed=0)
    return trainer.train_step


def measure(steps: dict[str, Callable[[], None]], n: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each, the steps interleaved so that load hits all alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(n):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=15, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf")
    parser.add_argument("--batch-size", type=int, default=64)
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
        f"ngf=ndf={args.width}, median of {args.steps} interleaved steps after "
        f"{args.warmup} warm-up"
    )
    print(f"{'size':>5} {'reference img/s':>16} {'ganforge img/s':>15} {'ratio':>6}")
    for size in args.sizes:
        images = digits(size)
        steps = {
            "reference": reference_step(images, config),
            "ganforge": ganforge_step(images, config),
        }
        median = measure(steps, args.steps, args.warmup)
        ref, ours = (args.batch_size / median[k] for k in ("reference", "ganforge"))
        print(f"{size:>5} {ref:>16.1f} {ours:>15.1f} {ours / ref:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
