"""Steps spread over real workers: the training lifecycle with dagster-celery's executor on this machine's
RabbitMQ, run by two `dagster-celery worker` processes that share only the PostgreSQL instance, the broker and an
(emulated) bucket. Each worker, and the process that launches the run, has its own empty FAKENEWS_HOME: a step
that read a file another step left on a local disk would fail. The event log shows which worker ran each step,
and the result matches the same lifecycle run in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from assets.conftest import OFFLINE_ENV, materialize, read_manifests, run_config
from assets.data import write_news_csv
from sqlalchemy.engine import make_url

from .processes import stop_group

BIN = Path(sys.executable).parent
WORKERS = ("worker_a", "worker_b")


def _instance_yaml(database_url: str, bucket: str, local_logs: Path) -> str:
    """A Dagster instance on PostgreSQL (runs, events, schedules), as docker/dagster.yaml keeps it, with every
    step's stdout/stderr in the bucket through dagster-gcp (the UI shows them whichever worker ran the step)."""
    url = make_url(database_url).set(drivername="postgresql+psycopg2")  # see docker/dagster.yaml: the NOTIFY
    return yaml.safe_dump(
        {
            "storage": {"postgres": {"postgres_url": url.render_as_string(hide_password=False)}},
            "compute_logs": {
                "module": "dagster_gcp.gcs.compute_log_manager",
                "class": "GCSComputeLogManager",
                "config": {"bucket": bucket, "prefix": "fakenews/dagster/compute_logs", "local_dir": str(local_logs)},
            },
            "telemetry": {"enabled": False},
        }
    )


@pytest.mark.slow
def test_two_celery_workers_with_separate_disks_run_the_lifecycle(
    tmp_path, postgres_databases, rabbitmq_url, gcs_bucket, tiny_encoder_dir
):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    instance = _instance_yaml(postgres_databases.create("celery"), gcs_bucket.name, tmp_path / "compute_logs")
    (dagster_home / "dagster.yaml").write_text(instance)
    sources = write_news_csv(tmp_path / "news.csv", n=300, seed=31)
    config = run_config(tiny_encoder_dir)
    (tmp_path / "run_config.yaml").write_text(yaml.safe_dump(config))
    broker = make_url(rabbitmq_url).set(drivername="pyamqp").render_as_string(hide_password=False)
    (tmp_path / "celery.yaml").write_text(yaml.safe_dump({"execution": {"config": {"broker": broker}}}))
    queue = f"fakenews_test_{os.getpid()}_{int(time.time())}"  # a queue of its own: no stray worker takes a task

    def env(home: str) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FAKENEWS_", "DAGSTER_"))},
            **OFFLINE_ENV,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery starts `celery` by name
            "DAGSTER_HOME": str(dagster_home),
            "FAKENEWS_HOME": str(tmp_path / home),
            "FAKENEWS_STORE": gcs_bucket.uri,
            "STORAGE_EMULATOR_HOST": gcs_bucket.emulator_host,
            "FAKENEWS_SOURCES": str(sources),
            "FAKENEWS_EXECUTOR": "celery",
            "FAKENEWS_CELERY_BROKER": broker,
            "FAKENEWS_CELERY_QUEUE": queue,
            "TOKENIZERS_PARALLELISM": "false",
        }

    # the schema first, as compose's dagster_init does: processes that create it at once collide
    migrate = subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"], env=env("init"), capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-3000:]
    workers = {}
    try:
        for name in WORKERS:
            log = (tmp_path / f"{name}.log").open("w")
            workers[name] = subprocess.Popen(
                [
                    str(BIN / "dagster-celery"),
                    "worker",
                    "start",
                    "-n",
                    name,
                    "-y",
                    str(tmp_path / "celery.yaml"),
                    "-q",
                    queue,
                    "-A",
                    "dagster_celery.app",
                    "--",
                    # the pool the README documents (prefork), one task at a time: with "solo" a long step blocks the
                    # broker connection, RabbitMQ drops it and hands the task to the other worker (a second training)
                    "--concurrency",
                    "1",
                ],
                env=env(name),
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        launcher_log = (tmp_path / "launcher.log").open("w")  # a file, not a pipe: the run prints every event
        launcher = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-m",
                "fakenews_assets.definitions",
                "-j",
                "full_pipeline",
                "-c",
                str(tmp_path / "run_config.yaml"),
            ],
            env=env("launcher"),
            cwd=tmp_path,
            stdout=launcher_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        launcher_log.close()
        workers["launcher"] = launcher
        deadline = time.monotonic() + 900
        while launcher.poll() is None:  # a worker that dies fails the test at once, not after the timeout
            dead = [n for n in WORKERS if workers[n].poll() is not None]
            logs = "\n".join(f"--- {n}\n{(tmp_path / f'{n}.log').read_text()[-3000:]}" for n in WORKERS)
            assert not dead and time.monotonic() < deadline, f"workers {dead} stopped, or the run timed out\n{logs}"
            time.sleep(2)
        assert launcher.returncode == 0, (tmp_path / "launcher.log").read_text()[-5000:] + logs
    finally:
        for process in workers.values():
            stop_group(process)

    # which worker ran what: dagster-celery records the worker's name with every step it executes
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (record,) = instance.get_run_records(dg.RunsFilter(job_name="full_pipeline"))
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        ran_on = {}
        for entry in instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            metadata = entry.dagster_event.engine_event_data.metadata
            if "Celery worker" in metadata:
                ran_on[entry.step_key] = metadata["Celery worker"].value.split("@")[0]
    assert {"trained_model", "quantized_model", "production_model", "reference_profile"} <= ran_on.keys()
    assert set(ran_on.values()) == set(WORKERS), ran_on  # both workers ran steps
    handoffs = [step for step, after in zip(list(ran_on), list(ran_on)[1:]) if ran_on[step] != ran_on[after]]
    assert handoffs, "no step ever ran on another worker than the one before it"

    # what the workers made is in the bucket, and is what one process makes from the same data and settings
    stored = gcs_bucket.objects("fakenews/")
    champion = json.loads(stored["fakenews/production/champion.json"])["location"]
    distributed = json.loads(stored["fakenews/dagster/manifests/trained_model.json"])
    assert champion == distributed["bundle"] and f"fakenews/{champion}/variants/int8/model.safetensors" in stored
    logs = {name for name in stored if name.startswith("fakenews/dagster/compute_logs/")}
    assert len(logs) >= len(ran_on), "every step's stdout/stderr is in the bucket (dagster-gcp compute logs)"
    for name in (*WORKERS, "launcher"):  # each disk holds only what its own steps fetched or wrote
        assert not (tmp_path / name / "production" / "champion.json").exists()

    os.environ.pop("FAKENEWS_STORE", None)
    in_process = materialize(tmp_path / "one_process", sources, config)
    assert in_process.result.success, in_process.failed_steps
    local = read_manifests(tmp_path / "one_process")["trained_model"]
    assert local.bundle == distributed["bundle"]  # the same cache key: the same tokens, settings and code
    assert local.weights_sha256 == distributed["weights_sha256"]  # and the same weights
    assert local.metrics.test.model_dump() == distributed["metrics"]["test"]
