"""Which executor runs the steps of a run, from ``FAKENEWS_EXECUTOR``; build_definitions asks here, once.

- ``in_process`` (default): one process for the whole run; torch, transformers and GX are imported once, and
  the 'gpu' pool still keeps training steps one at a time. The laptop and the Docker run containers.
- ``multiprocess``: a process per step, in the run's own container or machine.
- ``k8s``: dagster-k8s's ``k8s_job_executor``, a Kubernetes Job per step with the resources of
  fakenews_assets/k8s.py (training on a GPU node). The deployed choice (deploy/helm/values.yaml).
- ``celery``: not yet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

EXECUTOR_ENV = "FAKENEWS_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess", "k8s")


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
        raise ValueError(f"{EXECUTOR_ENV}=celery: not yet (the celery executor comes later); use one of {EXECUTORS}")
    raise ValueError(f"{EXECUTOR_ENV}={name!r}: expected one of {EXECUTORS}")
