"""Training on several processes with PyTorch's own engine: torchrun starts the processes,
torch.distributed connects them, DistributedDataParallel averages their gradients.

    torchrun --nproc-per-node 2 tools/train.py experiments/unet_kl.py --device=cpu   # gloo
    torchrun --nproc-per-node 4 tools/train.py experiments/w300_unet_js.py          # nccl, 4 GPUs

`--batch_size` is the global batch: each of the N processes takes its 1/N share of every
batch of the single-process data order, so steps, epochs, learning rate and budget mean the
same for any N, and a run may be resumed with another N. Only rank 0 writes files.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from heatnet.errors import ConfigError
from heatnet.runtime import choose_device

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class World:
    """This process's place among the processes of a run (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # rank among the processes on this machine: its GPU index
    local_size: int = 1
    backend: str = ""  # "gloo" or "nccl" once started; "" for a single process

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder, checkpoints, events and metrics."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def local_batch(self, batch_size: int) -> int:
        """This process's share of a global batch."""
        if batch_size % self.size:
            options = sorted({max(self.size, batch_size // self.size * self.size), -(-batch_size // self.size) * self.size})
            raise ConfigError(f"--batch_size={batch_size} is the global batch and must split evenly among "
                              f"{self.size} processes; use {' or '.join(map(str, options))}")
        return batch_size // self.size

    def device(self, name: str) -> torch.device:
        """The device of this process for the --device setting: under torchrun each process takes
        the GPU of its local rank, or the CPU."""
        if not self.distributed:
            try:
                return choose_device(name)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        if name not in ("", "cpu", "cuda"):
            raise ConfigError(f"--device={name}: under torchrun give --device=cuda or --device=cpu; "
                              f"each process takes the GPU of its local rank")
        if name == "cpu" or not torch.cuda.is_available():
            if name == "cuda":
                raise ConfigError("--device=cuda asked for, but CUDA is not available here (use --device=cpu)")
            return torch.device("cpu")
        if self.local_size > torch.cuda.device_count():
            raise ConfigError(f"{self.local_size} processes on this machine but {torch.cuda.device_count()} GPU(s); "
                              f"use --nproc-per-node {torch.cuda.device_count()}, or --device=cpu")
        return torch.device("cuda", self.local_rank)

    def start(self, device: torch.device) -> World:
        """Join the process group (nccl for GPUs, gloo for CPUs); returns the world with its backend."""
        if not self.distributed:
            return self
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():  # once per process: later runs (benchmark seeds) reuse the group
            dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
            atexit.register(dist.destroy_process_group)
        elif dist.get_backend() != backend:
            raise ConfigError(f"this process joined its group with {dist.get_backend()}; a {device.type} run needs {backend}")
        return World(self.rank, self.size, self.local_rank, self.local_size, backend)

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sums over all processes (one collective for all values)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value) -> list:
        """Every process's picklable `value`, in rank order, on every process."""
        if not self.distributed:
            return [value]
        values = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def broadcast(self, value):
        """Rank 0's picklable `value`, on every process."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_weights(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers into every process's `module`, in place."""
        if self.distributed:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module a training step calls: DistributedDataParallel over `model` (which keeps its
        own weights, so evaluation and checkpoints use `model` itself), or `model` alone."""
        if not self.distributed:
            return model
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def world_from_environment() -> World:
    """The world torchrun describes in the environment; one process when it is not set."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return World()
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} is set but {', '.join(missing)} is not: "
                          f"start distributed runs with torchrun")
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run with one process")
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return World(rank, size, int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"]))


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of torch's generator for one training step of one process (dropout masks): a
    function of the position only, so a resumed run, on any number of processes, draws what an
    uninterrupted one draws without storing every process's generator."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0] >> 1)


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation indices of one process: rank, rank + N, rank + 2N, ... (no padding, no repeats)."""

    def __init__(self, length: int, world: World):
        self.indices = list(range(world.rank, length, world.size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

