"""A run's place in a distributed job, read from the launcher's environment (the process group: test_many_writers)."""

from __future__ import annotations

from torchscope.capture.distributed import Placement, detect


def test_torchrun_variables_give_rank_world_size_local_rank_and_the_rendezvous_id_as_job() -> None:
    env = {"RANK": "5", "WORLD_SIZE": "16", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "rdzv-42", "SLURM_JOB_ID": "9"}
    assert detect(env=env) == Placement(5, 16, 1, "rdzv-42")


def test_torchscope_job_id_wins_over_the_launchers_and_init_job_wins_over_everything() -> None:
    env = {"TORCHSCOPE_JOB_ID": "mine", "TORCHELASTIC_RUN_ID": "rdzv", "SLURM_JOB_ID": "9"}
    assert detect(env=env).job_id == "mine"
    assert detect(job="explicit", env=env).job_id == "explicit"
    assert detect(env={"SLURM_JOB_ID": "9"}).job_id == "9"


def test_slurm_task_variables_are_the_fallback_and_a_plain_process_is_outside_any_job() -> None:
    env = {"SLURM_PROCID": "2", "SLURM_NTASKS": "4", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "77"}
    assert detect(env=env) == Placement(2, 4, 0, "77")
    assert detect(env={}) == Placement(None, None, None, None)
    assert detect(env={"RANK": "x", "WORLD_SIZE": ""}) == Placement(None, None, None, None)
