"""The ranks of a ``torch.distributed`` job (gloo, CPU processes) write into one store at once, on both backends."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from ddp_ranks import PROFILED, SCALARS, start_job, value_at

import torchscope

STEPS = 120


def check_every_row(db: str, world: int, job: str, steps: int, stderr: list[str], scalar_steps: int | None = None) -> None:
    """No rank warned (no "database is locked", nothing dropped); each rank's run, scalars and watched steps are all
    there, exactly."""
    errors = "\n".join(stderr)
    assert "locked" not in errors and "TorchscopeWarning" not in errors, errors[-3000:]
    store = torchscope.open(db)
    runs = store.runs().sort_values("rank")
    assert runs["rank"].tolist() == list(range(world))
    assert runs["world_size"].tolist() == [world] * world
    assert runs["job_id"].tolist() == [job] * world
    assert runs["status"].tolist() == ["finished"] * world
    assert runs["dropped"].tolist() == [0] * world
    captured, steps = steps, scalar_steps if scalar_steps is not None else steps
    for run_id, rank in zip(runs["id"], runs["rank"], strict=True):
        frame = store.scalars(int(run_id))
        expected = sorted((f"t{tag}", step, value_at(rank, step, tag)) for tag in range(SCALARS) for step in range(steps))
        assert sorted(zip(frame["tag"], frame["step"], frame["value"])) == expected
        assert int(store.run(int(run_id))["scalar_count"]) == SCALARS * steps
        assert store.graph_steps(int(run_id))["step"].tolist() == list(range(captured))
    engine = sqlalchemy.create_engine(db if "://" in db else f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM scalars").scalar() == world * SCALARS * steps
        per_run = conn.exec_driver_sql("SELECT run_id, COUNT(*) FROM tensor_stats GROUP BY run_id").all()
        # the same model on every rank: the same statistics rows per captured step
        assert len(per_run) == world and len({count for _run, count in per_run}) == 1 and per_run[0][1] > 0
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM names WHERE name LIKE 't_'").scalar() == SCALARS
    engine.dispose()
    store.close()


def test_three_gloo_ranks_write_one_sqlite_store_at_once_without_losing_a_row(tmp_path: Path) -> None:
    db = str(tmp_path / "job.db")
    stderr = start_job(tmp_path, db, 3, job="sqlite-job", steps=STEPS, mode="live")
    check_every_row(db, 3, "sqlite-job", STEPS + 1 + PROFILED, stderr, scalar_steps=STEPS)
    # each rank profiled one window live: the three windows are one group, by the runs' job id
    store = torchscope.open(db)
    profiles = store.profiles()
    assert len(profiles) == 3 and set(profiles["name"]) == {"window 1"}
    for pid in profiles["id"]:
        group = store.rank_group(int(pid))
        assert group["rank"].tolist() == [0, 1, 2]
        assert sorted(group["profile_id"]) == sorted(profiles["id"])
    steps = store.rank_steps(int(profiles["id"].iloc[0]))
    assert steps[["step", "rank"]].values.tolist() == [[s, r] for s in range(1, 1 + PROFILED) for r in range(3)]
    assert (steps["comm_ns"] > 0).all() and (steps["compute_ns"] > 0).all()  # gloo all-reduces and ops, every step
    store.close()


def test_two_gloo_ranks_write_one_new_postgresql_store_at_once_without_losing_a_row(
    tmp_path: Path, postgres_url: str
) -> None:
    import uuid

    name = f"t_{uuid.uuid4().hex[:12]}"  # a new database: the ranks also race to create the schema
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    db = postgres_url.replace("/torchscope?", f"/{name}?")
    stderr = start_job(tmp_path, db, 2, job="pg-job", steps=STEPS, mode="none")
    check_every_row(db, 2, "pg-job", STEPS, stderr)
