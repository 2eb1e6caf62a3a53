"""Kubernetes without a cluster (none runs here): the per-step resources as dagster-k8s's own parser reads
them from the jobs' steps, the executor FAKENEWS_EXECUTOR picks, and the Helm values for the Dagster chart."""

from __future__ import annotations

import importlib.util
import json

import dagster as dg
import pytest
import yaml
from dagster_k8s import k8s_job_executor
from dagster_k8s.job import get_user_defined_k8s_config

from fakenews_assets.definitions import build_definitions
from fakenews_assets.executor import EXECUTOR_ENV

from .files import REPO

VALUES = REPO / "deploy" / "helm" / "values.yaml"
JOBS = ("full_pipeline", "retrain", "drift_job")
TRAINING = "trained_model"


def step_configs(executor: str = "k8s") -> dict[str, object]:
    """Every step (node) of every job -> the UserDefinedDagsterK8sConfig the k8s executor would apply."""
    defs = build_definitions(environ={EXECUTOR_ENV: executor})
    configs = {}
    for name in JOBS:
        job = defs.resolve_job_def(name)
        for node in job.graph.nodes:
            configs[node.name] = get_user_defined_k8s_config(node.tags)
    return configs


def test_training_asks_for_one_gpu_on_a_gpu_node_and_no_other_step_does():
    configs = step_configs()
    assets = {n for n, c in configs.items() if c.container_config}
    # every asset of the three jobs says what it needs (asset checks run with the run pod's defaults)
    assert assets == {
        "raw_news",
        "feedback_labels",
        "validated_news",
        "news_splits",
        "tokenized_news",
        "trained_model",
        "model_evaluation",
        "quantized_model",
        "production_model",
        "reference_profile",
        "daily_predictions",
        "drift_report",
        "live_quality",
    }
    training = configs[TRAINING]
    assert training.container_config["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert training.pod_spec_config["node_selector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in training.pod_spec_config[
        "tolerations"
    ]
    for name in assets - {TRAINING}:
        resources = configs[name].container_config["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}, name
        assert set(resources["limits"]) == {"memory"}, name  # CPU and memory only: no GPU
        assert not configs[name].pod_spec_config, name  # and no GPU node
    for name, config in configs.items():
        gpu = config.container_config.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
        assert (gpu is not None) == (name == TRAINING), name


def test_the_executor_is_chosen_by_fakenews_executor():
    for value, expected in (
        (None, dg.in_process_executor),
        ("in_process", dg.in_process_executor),
        ("multiprocess", dg.multiprocess_executor),
        ("k8s", k8s_job_executor),
    ):
        defs = build_definitions(environ={EXECUTOR_ENV: value} if value else {})
        for name in JOBS:
            assert defs.resolve_job_def(name).executor_def is expected, (value, name)
    celery = build_definitions(environ={EXECUTOR_ENV: "celery", "FAKENEWS_CELERY_BROKER": "pyamqp://u:secret@mq//"})
    executor = celery.resolve_job_def("full_pipeline").executor_def
    assert executor.name == "celery"
    from fakenews_assets.executor import celery_config

    config = celery_config({"FAKENEWS_CELERY_BROKER": "pyamqp://u:secret@mq//", "FAKENEWS_CELERY_QUEUE": "gpu"})
    assert config["broker"] == {"env": "FAKENEWS_CELERY_BROKER"}  # a reference: the password is never in config
    assert config["config_source"] == {"task_default_queue": "gpu"}
    with pytest.raises(ValueError, match="expected one of"):
        build_definitions(environ={EXECUTOR_ENV: "k8"})


def test_the_helm_values_deploy_the_user_code_image_with_the_k8s_launcher_and_executor():
    values = yaml.safe_load(VALUES.read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"] is True
    assert deployment["image"]["repository"].endswith("fakenews-user-code")
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("-m") + 1]
    assert module == "fakenews_assets.definitions" and importlib.util.find_spec(module) is not None
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # runs and steps get the env below
    env = deployment["env"]
    assert env[EXECUTOR_ENV] == "k8s"
    mount = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    assert mount["fakenews-artifacts"] == env["FAKENEWS_HOME"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    postgres = values["postgresql"]
    assert postgres["postgresqlHost"] and postgres["postgresqlDatabase"]
    # the same driver as docker/dagster.yaml (tests/deploy/test_files.py shows why psycopg 3 fails there)
    docker_instance = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())
    assert postgres["postgresqlScheme"] == docker_instance["run_storage"]["config"]["postgres_db"]["scheme"]
    # no literal secrets: the chart reads the password from a secret created beforehand
    assert "postgresqlPassword" not in postgres and values["generatePostgresqlPasswordSecret"] is False
    assert {s["name"] for s in deployment["envSecrets"]} == {"fakenews-secrets"}
    text = VALUES.read_text().lower()
    assert "password:" not in text.replace("postgresql-password", "") and "api_key:" not in text
    # the run pod's defaults parse as dagster-k8s container config (step pods merge their tags over them)
    run_config = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    parsed = get_user_defined_k8s_config(
        {"dagster-k8s/config": json.dumps({"container_config": run_config["containerConfig"]})}
    )
    assert parsed.container_config["resources"]["requests"]["memory"] == "2Gi"
