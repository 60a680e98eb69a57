"""Several processes, one GRPO run: torchrun's environment, torch.distributed process groups,
and how a step's samples are shared out.

``torchrun --nproc-per-node N -m geogrpo train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them (gloo on
the CPU, NCCL on CUDA). Without them a run is one process and nothing here communicates.

Sharding rule: the B = N x G samples of a step keep their global order; rank r owns the
contiguous slice :meth:`DistributedContext.shard` gives it, padded with copies of its last sample
(masked out of the loss and the rewards) so that every rank holds the same number of rows. Equal
shapes mean every rank calls the model the same number of times, which DDP's all-reduce and
FSDP2's all-gathers require. Rewards and ground-truth metrics are gathered into the whole
``[N, G, K]`` batch on every rank, so the group advantages never depend on how groups are split.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

# What torchrun exports to each process.
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Shard:
    """Rank ``rank``'s rows ``[start, stop)`` of a batch of ``total``, padded to ``size`` rows."""

    start: int
    stop: int
    size: int  # rows every rank holds: ceil(total / world_size)

    @property
    def real(self) -> int:
        return self.stop - self.start

    def rows(self) -> list[int]:
        """Global indices of the padded shard: the real rows, then copies of the last one."""
        last = self.stop - 1 if self.real else self.start - 1  # a rank past the end repeats it
        return list(range(self.start, self.stop)) + [last] * (self.size - self.real)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the run. ``world_size == 1`` is a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def shard(self, total: int) -> Shard:
        return shard_rows(total, self.rank, self.world_size)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the body on rank 0, then on the others: a cache rank 0 fills, the rest read."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def gather_rows(self, local: Tensor) -> Tensor:
        """This rank's real rows ``[b_real, ...]`` -> every rank's ``[B, ...]``, in global order
        (shards are contiguous in rank order), on every rank."""
        if not self.enabled:
            return local
        return torch.cat(self.gather_objects(local.detach().cpu()))

    def gather_objects(self, obj: Any) -> list[Any]:
        """One object from every rank, in rank order."""
        if not self.enabled:
            return [obj]
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, obj)
        return parts


def shard_rows(total: int, rank: int, world_size: int) -> Shard:
    size = math.ceil(total / world_size)
    start = min(rank * size, total)
    return Shard(start, min(start + size, total), size)


def check_world_size(world_size: int, conditions: int, group_size: int) -> None:
    """Every rank must own at least one real sample of a step."""
    total = conditions * group_size
    if world_size > 1 and shard_rows(total, world_size - 1, world_size).real < 1:
        raise ValueError(
            f"distributed: {world_size} ranks cannot share a step of sampling."
            f"conditions_per_step x group_size = {conditions} x {group_size} = {total} videos "
            f"(rank {world_size - 1} would get none); raise sampling.conditions_per_step to at "
            f"least {math.ceil(world_size / group_size)} or run fewer ranks"
        )


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(
    backend: str = "auto", timeout_s: float = 600.0, device: str = "cpu"
) -> DistributedContext:
    """The context of this process: a process group when torchrun started several (or one is
    already initialised, as in tests), else a single process. Never waits longer than
    ``timeout_s`` for the other ranks."""
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(), _local_rank())
    if not launched_by_torchrun():
        return DistributedContext()
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise ValueError(
            f"distributed: WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} "
            "not set; start every rank with torchrun (torchrun --nproc-per-node N -m geogrpo "
            "train ...; --nnodes/--rdzv-endpoint for several machines)"
        )
    if backend == "auto":
        backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(_local_rank())
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except Exception as err:  # torch raises DistStoreError, RuntimeError or TimeoutError here
        raise ConnectionError(
            f"distributed: rank {rank} of {world} could not meet the other ranks at {where} "
            f"within distributed.timeout_s = {timeout_s:g} s ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}); start all {world} "
            "processes with the same torchrun rendezvous, check MASTER_ADDR/MASTER_PORT are "
            "reachable, or raise distributed.timeout_s"
        ) from None
    return DistributedContext(rank, world, _local_rank())


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def close_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_same_config(ctx: DistributedContext, flat: Mapping[str, Any]) -> None:
    """Every rank must run the same settings; rank 0's error names each difference."""
    if not ctx.enabled:
        return
    from geogrpo.train.checkpoint import changed_settings

    configs = ctx.gather_objects(dict(flat))
    differ = {
        r: changed_settings(configs[0], c, ()) for r, c in enumerate(configs) if c != configs[0]
    }
    if not differ:
        return
    if ctx.is_main:
        lines = "; ".join(
            f"rank {r}: "
            + ", ".join(
                f"{k} ({configs[0].get(k)!r} on rank 0, {configs[r].get(k)!r})" for k in keys
            )
            for r, keys in differ.items()
        )
        raise ValueError(
            f"distributed: the ranks run different settings ({lines}); start every rank with "
            "the same recipe, --config and --set"
        )
    raise ValueError("distributed: the ranks run different settings (rank 0 names them)")


def parallelize(
    transformer: torch.nn.Module,
    ctx: DistributedContext,
    strategy: str,
    cpu_offload: bool = False,
) -> None:
    """Make ``transformer`` data-parallel in place, keeping its parameter names.

    ``ddp``: PyTorch's DDP in its composable form (``replicate``: the module is not wrapped, so
    LoRA's ``disable_adapter`` and the conditionings' hooks see the same object); gradients are
    averaged over the ranks in each backward. ``fsdp``: FSDP2 ``fully_shard`` on every
    transformer block and then the root; weights, gradients and optimizer states live sharded,
    each block's weights are all-gathered for its forward and backward. Both average gradients,
    so the trainer scales each rank's loss by the world size to keep the single-process sum.
    """
    if strategy == "fsdp":
        if not dist.is_initialized():
            if cpu_offload:
                raise ValueError(
                    "distributed.cpu_offload: FSDP2 needs a process group; start the run with "
                    "torchrun, even on one GPU (torchrun --nproc-per-node 1 -m geogrpo train ...)"
                )
            return
        from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

        # The policy never writes in place into the transformer's output (the conditionings slice
        # it and cast it out of place), which is what this warning is about.
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view")
        kwargs = {"offload_policy": CPUOffloadPolicy()} if cpu_offload else {}
        base = getattr(transformer, "get_base_model", lambda: transformer)()
        for block in base.blocks:
            fully_shard(block, **kwargs)
        fully_shard(transformer, **kwargs)
        return
    if ctx.enabled:
        # The composable DDP (torch.distributed._composable.replicate) is what torchtitan uses
        # for data parallelism without a wrapper module.
        from torch.distributed._composable import replicate

        replicate(transformer)


def is_dtensor(t: Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full_tensor(t: Tensor) -> Tensor:
    """A DTensor's whole value (a collective: every rank calls it), a plain tensor as it is."""
    return t.full_tensor() if is_dtensor(t) else t
