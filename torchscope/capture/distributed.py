"""Where a run sits in a distributed job: its rank, the world size, its local rank and the job's id.

Read when ``torchscope.init`` creates the run (docs/capture.md, "Distributed jobs"):

- rank and world size from ``torch.distributed`` when its default process group is initialised, else from the
  ``RANK`` / ``WORLD_SIZE`` variables that ``torchrun``, ``torch.multiprocessing`` launchers and SLURM wrappers set
  (``SLURM_PROCID`` / ``SLURM_NTASKS`` as a last resort); ``LOCAL_RANK`` (or ``SLURM_LOCALID``) for the local rank;
- the job id from ``$TORCHSCOPE_JOB_ID``, else ``$TORCHELASTIC_RUN_ID`` (torchrun's ``--rdzv-id``, the same on every
  node), else ``$SLURM_JOB_ID``; None outside a job. ``torchscope.init(job=...)`` overrides it.

Nothing here raises: a value that cannot be read is None.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import NamedTuple

JOB_ID_VARIABLES = ("TORCHSCOPE_JOB_ID", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID")
"""Environment variables read for the job id, first set one wins."""


class Placement(NamedTuple):
    """A process's place in a distributed job; every field None outside one."""

    rank: int | None = None
    world_size: int | None = None
    local_rank: int | None = None
    job_id: str | None = None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _from_process_group() -> tuple[int, int] | None:
    """``(rank, world_size)`` of an initialised default process group; None without one (or without torch loaded:
    importing torch just to learn there is no process group would cost a second)."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_rank()), int(dist.get_world_size())
    except Exception:  # noqa: BLE001 - a broken process group is no reason to fail init
        return None
    return None


def detect(job: str | None = None, env: Mapping[str, str] | None = None) -> Placement:
    """This process's :class:`Placement`; ``job`` (``torchscope.init(job=...)``) wins over the environment."""
    env = os.environ if env is None else env
    group = _from_process_group()
    rank = group[0] if group else _int(env.get("RANK"))
    world = group[1] if group else _int(env.get("WORLD_SIZE"))
    if rank is None and world is None:
        rank, world = _int(env.get("SLURM_PROCID")), _int(env.get("SLURM_NTASKS"))
    local = _int(env.get("LOCAL_RANK"))
    if local is None:
        local = _int(env.get("SLURM_LOCALID"))
    if job is None:
        job = next((env[name] for name in JOB_ID_VARIABLES if env.get(name)), None)
    return Placement(rank, world, local, None if job is None else str(job)[:200])
