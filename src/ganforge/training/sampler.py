"""Minibatches from an in-memory tensor: a seeded permutation per epoch, indexed on the device.

No Dataset, no DataLoader, no per-sample Python: the whole (uint8) store is moved to the device
once when it fits, and a batch is one `index_select` plus a conversion to [-1, 1]. The order is
a function of (seed, epoch) alone, so a resumed run draws exactly the batches the original
would have, from a single integer cursor (batches consumed so far).
"""

from __future__ import annotations

import logging

import torch

from ganforge.data.scaling import to_model_range

log = logging.getLogger(__name__)

# Keep the data on the GPU when it takes at most this share of the free memory.
DEVICE_MEMORY_SHARE = 0.25


class TensorSampler:
    """Batches of `batch_size` from this rank's shard of `data`, epoch after epoch."""

    def __init__(
        self,
        data: torch.Tensor,
        labels: torch.Tensor | None,
        batch_size: int,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ) -> None:
        n = data.shape[0]
        self.per_rank = n // world_size
        self.batches_per_epoch = self.per_rank // batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"{n} training samples over {world_size} process(es) cannot fill one batch of "
                f"{batch_size}: lower train.batch_size"
            )
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.rank, self.world_size = rank, world_size
        self.is_image = data.dim() == 4
        self.channels_last = channels_last and self.is_image
        self.storage = device if _fits(data, device) else torch.device("cpu")
        if self.storage != device:
            log.info("training data (%.0f MiB) stay in host memory", data.nbytes / 2**20)
        self.data = data.to(self.storage)
        if labels is None:
            labels = torch.full((n,), -1, dtype=torch.int64)
        self.labels = labels.to(self.storage, torch.int64)
        self.cursor = 0
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.int64)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for `epoch`: one permutation shared by all ranks, sliced."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.data.shape[0], generator=gen)
        return perm[self.rank :: self.world_size][: self.per_rank].to(self.storage)

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.cursor // self.batches_per_epoch

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(samples in model range on the device, labels [B] with -1 where unlabelled)."""
        epoch, i = divmod(self.cursor, self.batches_per_epoch)
        if epoch != self._epoch:
            self._order, self._epoch = self.epoch_order(epoch), epoch
        idx = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        x, y = self.data.index_select(0, idx), self.labels.index_select(0, idx)
        if self.storage != self.device:
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
        x = to_model_range(x) if x.dtype == torch.uint8 else x.float()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.cursor += 1
        return x, y


def _fits(data: torch.Tensor, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return data.nbytes <= DEVICE_MEMORY_SHARE * free
