"""DDP on CPU: two gloo processes train a tiny BatchNorm GAN and end with identical weights."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from tiny_training import tiny_config, tiny_images

        from ganforge.training import current_context, fit

        data, _ = tiny_images(96)
        config = tiny_config(batch_size=8, max_steps=5, checkpoint_every=3, num_sample_images=4)
        ctx = current_context()
        result = fit(config, data, seed=0, dist=ctx, checkpoint_dir=Path(out) / "ckpt")
        state = {
            "rank": ctx.rank,
            "cursor_images": result.step * config.batch_size,
            "G": result.generator.state_dict(),
            "D": result.discriminator.state_dict(),
            "EMA": result.ema.state_dict(),
            "history": len(result.history),
        }
        torch.save(state, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_hold_identical_weights(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for net in ("G", "D", "EMA"):
        assert a[net].keys() == b[net].keys()
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)
    # they trained (weights moved from the seeded initialisation) on different shards
    from ganforge.config import TrainConfig
    from ganforge.models import build_generator
    from ganforge.training import make_spec

    torch.manual_seed(0)
    init = build_generator(make_spec(TrainConfig(nz=8, ngf=4, ndf=4), (1, 16, 16)))
    assert not torch.equal(init.state_dict()["net.0.weight"], a["G"]["net.0.weight"])
    ckpt = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2 and ckpt["step"] == 5
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # own noise


def test_shards_partition_each_epoch() -> None:
    from ganforge.training.sampler import TensorSampler

    data = torch.arange(50, dtype=torch.float32)[:, None]
    orders = [
        TensorSampler(
            data, None, 5, seed=1, device=torch.device("cpu"), rank=r, world_size=2
        ).epoch_order(3)
        for r in range(2)
    ]
    joined = torch.cat(orders)
    assert len(orders[0]) == len(orders[1]) == 25 and len(set(joined.tolist())) == 50
