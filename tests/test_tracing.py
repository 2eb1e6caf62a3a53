"""The traced forward pass the API serves: same logits as the eager model on any batch shape, and the
eager model whenever a trace cannot be trusted."""

from __future__ import annotations

import numpy as np
import torch

from fakenews_ml.config import PredictConfig
from fakenews_ml.model.tracing import trace_classifier
from fakenews_ml.predict import Predictor
from fakenews_ml.quantize import quantize_bundle


def test_traced_predictor_matches_the_eager_one_on_every_variant(tiny_bundle_copy, tiny_frames):
    quantize_bundle(tiny_bundle_copy, tiny_frames["test"])
    titles = tiny_frames["test"]["title"].tolist()[:40] + ["x", "A much longer headline " * 10]
    for variant in ("fp32", "int8", "bf16"):
        eager = Predictor.from_path(tiny_bundle_copy, variant)
        traced = Predictor.from_path(tiny_bundle_copy, variant, PredictConfig(trace=True))
        if variant == "bf16":  # autocast is not kept by a trace: served eagerly
            assert not isinstance(traced.forward_model, torch.jit.ScriptModule)
        else:
            assert isinstance(traced.forward_model, torch.jit.ScriptModule), variant
        for batch in (titles[:1], titles[:3], titles):  # shapes other than the traced one
            np.testing.assert_allclose(
                traced.predict_proba(batch), eager.predict_proba(batch), atol=1e-5, err_msg=variant
            )


class ShapeDependent(torch.nn.Module):
    """A forward whose Python branch on the width a trace would freeze at the example's value."""

    def __init__(self, encoder_config):
        super().__init__()
        self.encoder = torch.nn.Module()
        self.encoder.config = encoder_config
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, input_ids, attention_mask):
        logits = torch.stack([attention_mask.sum(1).float(), -attention_mask.sum(1).float()], 1) * self.scale
        return logits * 2 if input_ids.shape[1] > 6 else logits


def test_a_trace_that_disagrees_with_the_eager_model_is_not_used(tiny_bundle, caplog):
    from fakenews_ml.bundle import load_bundle

    model = ShapeDependent(load_bundle(tiny_bundle).model.encoder.config)
    assert trace_classifier(model, pad_token_id=0) is model
    assert "tracing failed" in caplog.text and "differ" in caplog.text
