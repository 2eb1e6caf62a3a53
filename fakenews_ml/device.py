"""The one place that decides compute: CUDA when present (bf16-mixed), else CPU (bf16 autocast where the
CPU has native bf16 instructions, which measured faster than fp32 here)."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch


@functools.cache
def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """``auto`` -> ``bf16-mixed`` on CUDA (with bf16 support) or bf16-capable CPUs, else ``32-true``."""
    if precision != "auto":
        return precision
    on_cuda = accelerator in ("auto", "gpu", "cuda") and cuda_available()
    if on_cuda:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_bf16() else "32-true"


def describe_device() -> dict:
    """What the run used, for metadata."""
    if cuda_available():
        return {"device": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
    return {
        "device": "cpu",
        "name": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "bf16": cpu_has_bf16(),
    }
