"""What each step asks Kubernetes for, as ``dagster-k8s/config`` op tags (the k8s_job_executor runs every step
in a pod of its own and reads these; the in-process and multiprocess executors ignore them).

Plain dicts, one per kind of step, passed to the asset decorators as ``op_tags``. Requests are what the
scheduler reserves; memory is also the limit (a step over it is OOM-killed, not allowed to starve its node);
CPU has no limit (throttling a step gains nothing). Only training asks for a GPU, on a GPU node: the node
label is GKE's accelerator label, so change GPU_NODE_SELECTOR for another cluster or GPU type.
"""

from __future__ import annotations

K8S_CONFIG_TAG = "dagster-k8s/config"

GPU_NODE_SELECTOR = {"cloud.google.com/gke-accelerator": "nvidia-l4"}
# GPU node pools are tainted so that only pods that asked for a GPU land there
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def step_resources(cpu: str, memory: str, gpus: int = 0) -> dict:
    """The op tags of a step that needs ``cpu`` cores, ``memory`` and, if any, ``gpus`` NVIDIA GPUs."""
    limits: dict = {"memory": memory}
    config: dict = {"container_config": {"resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}}}
    if gpus:
        limits["nvidia.com/gpu"] = gpus
        config["pod_spec_config"] = {"node_selector": dict(GPU_NODE_SELECTOR), "tolerations": list(GPU_TOLERATIONS)}
    return {K8S_CONFIG_TAG: config}


# reading, validating and splitting the news (pandas, Great Expectations); the feedback snapshot
DATA_STEP = step_resources(cpu="1", memory="2Gi")
# every split through the fast tokenizer
TOKENIZE_STEP = step_resources(cpu="2", memory="4Gi")
# fine-tuning the encoder (trained_model): one GPU on a GPU node
GPU_TRAINING_STEP = step_resources(cpu="4", memory="16Gi", gpus=1)
# a model on the CPU: evaluation, quantization and its parity check, the reference profile's embeddings
MODEL_CPU_STEP = step_resources(cpu="2", memory="8Gi")
# the champion/challenger promotion: files and a symlink
PROMOTION_STEP = step_resources(cpu="500m", memory="1Gi")
# a day of traffic: the snapshot and the Evidently drift report (with embeddings)
MONITORING_STEP = step_resources(cpu="2", memory="4Gi")
