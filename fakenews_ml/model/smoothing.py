"""SmoothQuant-style input smoothing, so that dynamic int8 loses less.

Dynamic int8 quantizes each Linear's input with one scale per tensor, and a transformer's activations
carry a few channels far larger than the rest: those set the scale, and every other channel is rounded
coarsely. Smoothing divides input channel ``j`` by ``s_j`` and multiplies the weight's column ``j`` by
``s_j`` (the product is unchanged in exact arithmetic), with ``s_j = max|x_j|^alpha / max|w_j|^(1 - alpha)``
measured on calibration rows: the activation outliers move into the weights, which int8 stores with one
scale per output channel. (Xiao et al. 2023, "SmoothQuant".) In BERT-style encoders the inputs of the
query/key/value, feed-forward and output projections also feed residual connections or come out of a
GELU, so the division cannot be folded into the previous layer: ``SmoothedLinear`` does it explicitly,
one element-wise multiply per Linear.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

INPUT_SCALE = "input_scale"


class SmoothedLinear(nn.Module):
    """``linear(x * input_scale)``: a Linear whose weight columns were multiplied by ``1 / input_scale``."""

    def __init__(self, linear: nn.Module, input_scale: torch.Tensor):
        super().__init__()
        self.linear = linear
        self.register_buffer(INPUT_SCALE, input_scale.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.input_scale)


def _encoder_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """Every Linear of the encoder (the small classification head stays as it is)."""
    return {name: m for name, m in model.named_modules() if name.startswith("encoder.") and isinstance(m, nn.Linear)}


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name), attr, module)


@torch.inference_mode()
def input_maxima(model: nn.Module, run_calibration) -> dict[str, torch.Tensor]:
    """Per input channel, the largest |activation| entering each encoder Linear while
    ``run_calibration(model)`` runs the model over calibration rows."""
    maxima: dict[str, torch.Tensor] = {}

    def record(name):
        def hook(_module, inputs):
            seen = inputs[0].detach().float().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            maxima[name] = torch.maximum(maxima[name], seen) if name in maxima else seen

        return hook

    hooks = [linear.register_forward_pre_hook(record(name)) for name, linear in _encoder_linears(model).items()]
    try:
        run_calibration(model)
    finally:
        for hook in hooks:
            hook.remove()
    return maxima


def smooth_inputs(model: nn.Module, maxima: dict[str, torch.Tensor], alpha: float) -> nn.Module:
    """A float copy of ``model`` with each calibrated encoder Linear smoothed (the original is untouched)."""
    model = copy.deepcopy(model).float().eval()
    for name, linear in _encoder_linears(model).items():
        if name not in maxima:
            continue
        floor = 1e-5  # a channel that never fired, or a zero weight column: leave it nearly as it is
        weight_max = linear.weight.detach().abs().amax(0).clamp(min=floor)
        scale = (maxima[name].clamp(min=floor) ** alpha / weight_max ** (1 - alpha)).clamp(min=floor)
        with torch.no_grad():
            linear.weight.mul_(scale)
        _replace(model, name, SmoothedLinear(linear, 1.0 / scale))
    return model


def smoothed_names(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the Linears that stored weights smoothed (their ``input_scale`` buffer is among the tensors)."""
    suffix = "." + INPUT_SCALE
    return [key[: -len(suffix)] for key in tensors if key.endswith(suffix)]


def wrap_smoothed(skeleton: nn.Module, names: list[str]) -> nn.Module:
    """Put ``SmoothedLinear`` shells (scale loaded later with the state dict) where stored weights had them."""
    for name in names:
        linear = skeleton.get_submodule(name)
        _replace(skeleton, name, SmoothedLinear(linear, torch.ones(linear.in_features)))
    return skeleton
