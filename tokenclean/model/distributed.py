"""Data-parallel processes: join an ``accelerate launch`` group, share batches, combine results.

``compute.processes: N`` asks for N processes, one per GPU. A stage run from its command line
(``python -m tasks.score``) re-runs that same command under ``accelerate launch`` (see
:func:`launch`); ``accelerate launch -m tasks.score`` by hand does the same. Inside the group,
each process takes every N-th batch of the one-process plan, so every sample is computed in
exactly the batch it would have on one device; scores are gathered back in sample order and
gradients are summed before each optimizer step. Only the first process writes artifacts.

Outside a launched group, with one process asked for, nothing here changes the plain one-process path.
"""

from __future__ import annotations

import atexit
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


def join() -> None:
    """Join the process group a launcher set up in the environment (once; no-op without one)."""
    if _launched_size() <= 1 or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # "cuda" now means this process's GPU
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    atexit.register(dist.destroy_process_group)


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


def sum_(tensors: list[torch.Tensor]) -> None:
    """Sum tensors across processes in place, in one flat message."""
    if world_size() <= 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(part.view_as(t))


def broadcast_(tensors: list[torch.Tensor]) -> None:
    """Give every process the first process's values (so all start from the same weights)."""
    if world_size() <= 1:
        return
    for t in tensors:
        dist.broadcast(t.data, src=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int) -> None:
    """Run the current stage on ``processes`` processes.

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
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", module, *sys.argv[1:]]
    log.info("running %s on %d processes: %s", module, processes, " ".join(cmd))
    sys.exit(subprocess.call(cmd))
