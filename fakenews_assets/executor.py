"""Which executor runs the steps of a run, from ``FAKENEWS_EXECUTOR``; build_definitions asks here, once.

- ``in_process`` (default): one process for the whole run; torch, transformers and GX are imported once, and
  the 'gpu' pool still keeps training steps one at a time. The laptop and the Docker run containers.
- ``multiprocess``: a process per step, in the run's own container or machine.
- ``k8s``: dagster-k8s's ``k8s_job_executor``, a Kubernetes Job per step with the resources of
  fakenews_assets/k8s.py (training on a GPU node). The deployed choice (deploy/helm/values.yaml).
- ``celery``: dagster-celery's executor: each step is a task on the broker (``FAKENEWS_CELERY_BROKER``, default
  RabbitMQ on 127.0.0.1; ``FAKENEWS_CELERY_BACKEND``, default ``rpc://``), run by whichever
  ``dagster-celery worker`` takes it. Workers share only the Postgres instance, the broker and the artifact
  store (``FAKENEWS_STORE``): no step reads a file another step left on a local disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

EXECUTOR_ENV = "FAKENEWS_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess", "k8s", "celery")
CELERY_BROKER_ENV, CELERY_BACKEND_ENV = "FAKENEWS_CELERY_BROKER", "FAKENEWS_CELERY_BACKEND"
CELERY_QUEUE_ENV = "FAKENEWS_CELERY_QUEUE"  # the queue the workers listen on (`-q`); default "dagster"
DEFAULT_CELERY_BROKER = "pyamqp://guest@127.0.0.1:5672//"


def choose_executor(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor ``environ`` (default: the process environment) asks for."""
    env = os.environ if environ is None else environ
    name = (env.get(EXECUTOR_ENV) or "in_process").strip().lower()
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor  # the deploy extra; imported only where it is chosen

        return k8s_job_executor
    if name == "celery":
        from dagster_celery import celery_executor  # the deploy extra; imported only where it is chosen

        return celery_executor.configured(celery_config(env), name="celery")
    raise ValueError(f"{EXECUTOR_ENV}={name!r}: expected one of {EXECUTORS}")


def celery_config(environ: Mapping[str, str]) -> dict:
    """The celery executor's config (and the workers': ``dagster-celery worker start -y`` takes the same block).
    A broker URL that is set is passed as an environment reference: a password in it is never in the config."""
    return {
        "broker": {"env": CELERY_BROKER_ENV} if environ.get(CELERY_BROKER_ENV) else DEFAULT_CELERY_BROKER,
        "backend": {"env": CELERY_BACKEND_ENV} if environ.get(CELERY_BACKEND_ENV) else "rpc://",
        "config_source": {"task_default_queue": environ.get(CELERY_QUEUE_ENV) or "dagster"},
    }
