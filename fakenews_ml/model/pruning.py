"""Structured pruning of a BERT-family encoder: whole attention heads and feed-forward neurons are ranked by
importance and physically removed (the Linear layers are sliced), so the smaller model runs faster on dense
CPU kernels. Then a short recovery fine-tune distils the unpruned model's output back into it.

Importance is Michel et al.'s (2019) head-mask score, extended to FFN neurons: a mask of ones is multiplied
into each head's context vector and into each intermediate activation; the gradient of the loss with respect
to a mask entry is the first-order change of the loss if that head or neuron were removed (|activation x
gradient| summed over tokens). The loss is the cross-entropy against the unpruned model's own predictions,
so no labels are needed: the calibration titles every bundle keeps are enough.

Transformers 5 removed ``prune_heads`` and ``config.pruned_heads``: the slicing is done here, and the kept
shapes are recorded in the encoder's ``config.json`` (``PRUNED_SHAPES``: heads and intermediate neurons per
layer), from which ``shrink_to`` rebuilds the smaller skeleton that a bundle's weights are loaded into.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers.pytorch_utils import prune_linear_layer

PRUNED_SHAPES = "fakenews_pruned_shapes"  # key in encoder/config.json


@dataclass
class Importance:
    heads: list[torch.Tensor]  # per layer: one score per attention head
    neurons: list[torch.Tensor]  # per layer: one score per intermediate (FFN) neuron


_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
_PARTS += ("intermediate.dense", "output.dense")


def _out_features(module: nn.Module) -> int:
    """A Linear's outputs, also once wrapped for smoothing or quantized to int8."""
    return int(getattr(module, "out_features", None) or module.linear.out_features)


def _layers(encoder: nn.Module, sliceable: bool = True) -> list[nn.Module]:
    """The transformer layers of a BERT-style encoder (BERT, RoBERTa, MiniLM, ELECTRA): anything else is refused.
    ``sliceable=False`` also accepts layers whose Linears were smoothed or quantized (to read their shapes)."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)

    def fits(module: nn.Module) -> bool:
        if sliceable:
            return isinstance(module, nn.Linear)
        return hasattr(module, "out_features") or isinstance(getattr(module, "linear", None), nn.Module)

    try:
        ok = bool(layers) and all(fits(layer.get_submodule(p)) for layer in layers for p in _PARTS)
    except AttributeError:
        ok = False
    if not ok:
        raise ValueError(
            f"structured pruning supports BERT-style encoders only (query/key/value, attention.output.dense, "
            f"intermediate.dense, output.dense per layer), not {type(encoder).__name__}"
        )
    return list(layers)


def _head_size(layer: nn.Module) -> int:
    return int(layer.attention.self.attention_head_size)


def shapes_of(encoder: nn.Module) -> dict[str, list[int]]:
    """Heads and intermediate neurons per layer, as the modules are now."""
    layers = _layers(encoder, sliceable=False)
    return {
        "heads": [_out_features(layer.attention.self.query) // _head_size(layer) for layer in layers],
        "intermediate": [_out_features(layer.intermediate.dense) for layer in layers],
    }


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _mask_hooks(layers: list[nn.Module], masks: Importance) -> list:
    """Forward pre-hooks multiplying the masks into the head contexts and the intermediate activations."""
    handles = []
    for layer, head_mask, neuron_mask in zip(layers, masks.heads, masks.neurons, strict=True):
        size = _head_size(layer)

        def heads(_module, args, mask=head_mask, size=size):
            context = args[0]
            shaped = context.view(*context.shape[:-1], -1, size) * mask.to(context.dtype)[:, None]
            return (shaped.view(context.shape), *args[1:])

        def neurons(_module, args, mask=neuron_mask):
            return (args[0] * mask.to(args[0].dtype), *args[1:])

        handles.append(layer.attention.output.dense.register_forward_pre_hook(heads))
        handles.append(layer.output.dense.register_forward_pre_hook(neurons))
    return handles


def importance(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> Importance:
    """Each head's and each FFN neuron's |gradient of the mask| summed over ``batches`` (``input_ids``,
    ``attention_mask``), the loss being cross-entropy against the model's own predictions."""
    layers = _layers(model.encoder)
    shapes = shapes_of(model.encoder)
    masks = Importance(
        [torch.ones(n, requires_grad=True) for n in shapes["heads"]],
        [torch.ones(n, requires_grad=True) for n in shapes["intermediate"]],
    )
    scores = Importance([torch.zeros(n) for n in shapes["heads"]], [torch.zeros(n) for n in shapes["intermediate"]])
    was_training = model.training
    model.eval()
    requires = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)  # only the masks' gradients are needed
    handles = _mask_hooks(layers, masks)
    try:
        for batch in batches:
            logits = model(batch["input_ids"], batch["attention_mask"])
            loss = F.cross_entropy(logits.float(), logits.detach().argmax(-1), reduction="sum")
            grads = torch.autograd.grad(loss, [*masks.heads, *masks.neurons])
            for score, grad in zip([*scores.heads, *scores.neurons], grads, strict=True):
                score += grad.abs()
    finally:
        for handle in handles:
            handle.remove()
        for parameter, flag in zip(model.parameters(), requires, strict=True):
            parameter.requires_grad_(flag)
        model.train(was_training)
    return scores


def _keep_global(scores: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """Indices to keep per layer: the lowest ``share`` of all units, each layer's scores normalised by their
    L2 norm so layers compare (Michel et al.), are removed; every layer keeps at least one unit."""
    normed = [s / s.norm().clamp(min=1e-12) for s in scores]
    total = sum(len(s) for s in normed)
    drop = int(round(share * total))
    ranked = sorted(((float(v), layer, i) for layer, s in enumerate(normed) for i, v in enumerate(s)))
    dropped: list[set[int]] = [set() for _ in normed]
    for _, layer, index in ranked:
        if drop <= 0:
            break
        if len(normed[layer]) - len(dropped[layer]) > 1:
            dropped[layer].add(index)
            drop -= 1
    return [torch.tensor([i for i in range(len(s)) if i not in gone]) for s, gone in zip(normed, dropped, strict=True)]


def plan(scores: Importance, head_share: float, neuron_share: float) -> Importance:
    """Which heads and neurons each layer keeps (sorted indices)."""
    return Importance(_keep_global(scores.heads, head_share), _keep_global(scores.neurons, neuron_share))


def _slice(layers: list[nn.Module], keep: Importance) -> None:
    for layer, heads, neurons in zip(layers, keep.heads, keep.neurons, strict=True):
        attention, size = layer.attention.self, _head_size(layer)
        rows = (heads[:, None] * size + torch.arange(size)[None, :]).reshape(-1)
        attention.query = prune_linear_layer(attention.query, rows)
        attention.key = prune_linear_layer(attention.key, rows)
        attention.value = prune_linear_layer(attention.value, rows)
        layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, rows, dim=1)
        attention.num_attention_heads = len(heads)
        attention.all_head_size = len(heads) * size
        layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, neurons)
        layer.output.dense = prune_linear_layer(layer.output.dense, neurons, dim=1)


def prune(encoder: nn.Module, keep: Importance) -> nn.Module:
    """Remove every head and neuron not in ``keep`` from ``encoder`` (in place) and record the new shapes in
    its config, so a saved ``config.json`` rebuilds the same smaller skeleton."""
    _slice(_layers(encoder), keep)
    encoder.config.update({PRUNED_SHAPES: shapes_of(encoder)})
    return encoder


def shrink_to(encoder: nn.Module, shapes: dict) -> nn.Module:
    """A freshly built (full-size) skeleton cut to the recorded ``shapes``; the weights loaded into it next
    decide what it computes. Shapes that do not fit the encoder are a ValueError."""
    layers = _layers(encoder)
    full = shapes_of(encoder)
    if not isinstance(shapes, dict) or set(shapes) != set(full):
        raise ValueError(f"{PRUNED_SHAPES} must have exactly the keys {sorted(full)}")
    for key, counts in shapes.items():
        if (
            not isinstance(counts, list)
            or len(counts) != len(layers)
            or not all(
                isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= top
                for n, top in zip(counts, full[key], strict=False)
            )
        ):
            raise ValueError(f"{PRUNED_SHAPES}.{key} must list {len(layers)} whole numbers from 1 to {full[key]}")
    _slice(
        layers,
        Importance([torch.arange(n) for n in shapes["heads"]], [torch.arange(n) for n in shapes["intermediate"]]),
    )
    return encoder


def recover(
    student: nn.Module,
    teacher_logits: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    batches: list[dict[str, torch.Tensor]],
    steps: int,
    learning_rate: float,
    seed: int = 0,
) -> list[float]:
    """A short fine-tune of the pruned ``student`` towards the unpruned model's output distribution (KL
    divergence, no labels needed) on ``batches``, cycled for ``steps`` steps. Returns the losses."""
    if steps <= 0 or not batches:
        return []
    generator = torch.Generator().manual_seed(seed)
    targets = [torch.log_softmax(teacher_logits(b).float(), -1) for b in batches]
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=learning_rate)
    student.train()
    losses = []
    for step in range(steps):
        if step % len(batches) == 0:
            order = torch.randperm(len(batches), generator=generator).tolist()
        index = order[step % len(batches)]
        batch = batches[index]
        log_probs = torch.log_softmax(student(batch["input_ids"], batch["attention_mask"]).float(), -1)
        loss = F.kl_div(log_probs, targets[index], log_target=True, reduction="batchmean")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    student.eval()
    return losses
