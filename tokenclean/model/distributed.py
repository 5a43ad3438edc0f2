"""Data-parallel processes through accelerate: join an ``accelerate launch`` group, share batches, combine results.

``compute.processes: N`` asks for N processes, one per GPU. A stage run from its command line
(``python -m tasks.score``) re-runs that same command under ``accelerate launch`` (see
:func:`launch`); ``accelerate launch -m tasks.score`` by hand does the same. Inside the group,
each process takes every N-th batch of the one-process plan, so every sample is computed in
exactly the batch it would have on one device; scores are gathered back in sample order.
Training wraps its loss module with ``Accelerator.prepare`` (:func:`wrap`): DDP, whose gradient
all-reduce overlaps the backward pass, or with ``compute.fsdp`` FSDP2, which shards weights,
gradients and optimizer state over the GPUs. Only the first process writes artifacts.

Outside a launched group, with one process asked for, nothing here changes the plain one-process path.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def _launched_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


_ACCELERATOR = None


def accelerator():
    """The process group's ``accelerate.Accelerator`` (made once), or None outside a launched group.

    ``accelerate launch --use_fsdp`` with one process makes one too: FSDP's code path on one GPU.

    On CPU it is asked for explicitly (gloo); on CUDA each process takes the GPU of its local rank,
    so "cuda" means that GPU from here on.
    """
    global _ACCELERATOR
    if _launched_size() <= 1 and os.environ.get("ACCELERATE_USE_FSDP", "").lower() != "true":
        return None  # one process, not launched for FSDP: the plain path
    if _ACCELERATOR is None:
        from accelerate import Accelerator

        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        _ACCELERATOR = Accelerator(cpu=not cuda)
    return _ACCELERATOR


def join() -> None:
    """Join the process group a launcher set up in the environment (once; no-op without one)."""
    accelerator()


def wrap(module: torch.nn.Module, optimizer):
    """``(module, optimizer)`` prepared for data-parallel training: DDP, or FSDP2 when launched with ``compute.fsdp``.

    DDP starts every process from the first one's weights and averages gradients across processes
    during the backward pass; the loss is scaled by the process count (:func:`training.accumulate`),
    so the step's gradient is the sum, as one process computes it. FSDP2 shards the module's weights
    and re-points the optimizer at the shards, so both are prepared together. One process: as given.
    """
    acc = accelerator()
    if acc is None:
        return module, optimizer
    if sharded():
        return acc.prepare(module, optimizer)
    return acc.prepare(module), optimizer  # DDP: the plain optimizer, the same update as one process


def sharded() -> bool:
    """Whether training shards weights over processes (launched with FSDP2)."""
    acc = accelerator()
    return acc is not None and bool(getattr(acc, "is_fsdp2", False))


def rank() -> int:
    join()
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    join()
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def progress(items=None, **kwargs):
    """A progress bar on the first process only: one bar per run, not one per process."""
    return tqdm(items, **kwargs) if is_main() else tqdm(items, disable=True, **kwargs)


def share(items: list) -> list:
    """This process's items: every N-th one, starting at its rank."""
    return items[rank() :: world_size()]


def gather(local: dict[int, object], n: int) -> list:
    """Every process's ``{index: value}`` merged into one list of ``n`` values, on every process."""
    if world_size() > 1:
        parts: list = [None] * world_size()
        dist.all_gather_object(parts, local)
        local = {k: v for part in parts for k, v in part.items()}
    missing = sorted(set(range(n)) - set(local))
    if missing:
        raise RuntimeError(f"{len(missing)} items computed by no process (first: {missing[0]})")
    return [local[i] for i in range(n)]


def sum_value(value: float, device) -> float:
    """A number summed over processes (the step loss, each process's share of it)."""
    if world_size() <= 1:
        return value
    total = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(total)
    return float(total)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# FSDP2, one unit per decoder layer (the class names its model's config gives, see transformers'
# _no_split_modules), weights gathered for a layer's forward and freed after it
FSDP = ["--use_fsdp", "--fsdp_version", "2", "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
        "--fsdp_reshard_after_forward", "true", "--fsdp_state_dict_type", "FULL_STATE_DICT"]


def launch(processes: int, fsdp: bool = False) -> None:
    """Run the current stage on ``processes`` processes (``fsdp``: sharded, for training).

    Inside a launched group this joins it. Otherwise, with ``processes > 1``, it re-runs this
    stage command (``python -m tasks.<stage> ...``) under ``accelerate launch`` and exits with
    its status; any other program asking for several processes gets an error, since only a
    command can be re-run.
    """
    if _launched_size() > 1:
        join()
        return
    if processes <= 1:
        return
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    module = spec.name if spec else ""
    if not module.startswith("tasks."):
        raise ValueError(f"compute.processes={processes} needs a stage command (python -m tasks.<stage>) "
                         "or accelerate launch; in-process calls run on one process")
    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise ValueError(f"compute.processes={processes} but only {torch.cuda.device_count()} GPUs are visible")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *(FSDP if fsdp else ["--multi_gpu"]),
           "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", module, *sys.argv[1:]]
    log.info("running %s on %d processes: %s", module, processes, " ".join(cmd))
    sys.exit(subprocess.call(cmd))
