"""The model side: classifier, batching, class weights, the Lightning module's train mode, precision choice."""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import pytest
import torch

from fakenews_ml import device
from fakenews_ml.config import ModelConfig, TrainConfig
from fakenews_ml.data.tokenize import TokenizedSplit
from fakenews_ml.model.classifier import HeadlineClassifier
from fakenews_ml.model.datamodule import BucketBatchSampler, NewsDataModule, PadCollator
from fakenews_ml.model.lightning_module import ClassifierModule, balanced_class_weights, training_loss


def _batch(tokenizer, titles, max_length=32):
    encoded = tokenizer(titles, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


@pytest.fixture(scope="module")
def classifiers(tiny_model_config):
    torch.manual_seed(0)
    mean = HeadlineClassifier.from_pretrained(tiny_model_config)
    cls = HeadlineClassifier.from_pretrained(tiny_model_config.model_copy(update={"pooling": "cls"}))
    return {"mean": mean.eval(), "cls": cls.eval()}


# --- HeadlineClassifier -----------------------------------------------------------------------------------


def test_forward_gives_two_float_logits_per_row(classifiers, tiny_tokenizer):
    ids, mask = _batch(tiny_tokenizer, ["a short one", "a rather longer headline about the budget vote", "x"])
    for model in classifiers.values():
        logits = model(ids, mask)
        assert logits.shape == (3, 2)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()
        assert model.embed(ids, mask).shape == (3, model.encoder.config.hidden_size)


def test_mean_pooling_averages_real_tokens_only(classifiers, tiny_tokenizer):
    model = classifiers["mean"]
    ids, mask = _batch(tiny_tokenizer, ["short", "a much longer headline with many more tokens in it"])
    with torch.no_grad():
        hidden = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = model.embed(ids, mask)
        n_real = int(mask[0].sum())
        assert n_real < ids.shape[1]  # row 0 really is padded
        torch.testing.assert_close(pooled[0], hidden[0, :n_real].mean(0))
        # padding must not move the vector: row 0 alone (no padding) gives the same embedding
        alone = model.embed(ids[:1, :n_real], mask[:1, :n_real])
        torch.testing.assert_close(pooled[:1], alone, atol=1e-5, rtol=1e-4)


def test_cls_pooling_takes_the_first_token(classifiers, tiny_tokenizer):
    model = classifiers["cls"]
    assert model.pooling == "cls"
    ids, mask = _batch(tiny_tokenizer, ["one headline", "another, longer headline here"])
    with torch.no_grad():
        hidden = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(model.embed(ids, mask), hidden[:, 0])
        assert not torch.allclose(classifiers["mean"].embed(ids, mask), hidden[:, 0])


def test_skeleton_from_encoder_config_has_the_same_parameters(classifiers, tiny_model_config):
    trained = classifiers["mean"]
    skeleton = HeadlineClassifier.from_encoder_config(trained.encoder.config, tiny_model_config)
    assert trained.state_dict().keys() == skeleton.state_dict().keys()
    assert all(a.shape == b.shape for a, b in zip(trained.state_dict().values(), skeleton.state_dict().values()))


# --- BucketBatchSampler -----------------------------------------------------------------------------------

LENGTHS = np.random.default_rng(7).integers(3, 40, size=203)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size,pool", [(8, 50), (8, 3), (16, 1), (300, 50)])
def test_sampler_covers_every_index_exactly_once(shuffle, batch_size, pool):
    sampler = BucketBatchSampler(LENGTHS, batch_size, shuffle=shuffle, seed=3, pool=pool)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(LENGTHS)))
    assert all(1 <= len(batch) <= batch_size for batch in batches)
    assert sum(len(batch) < batch_size for batch in batches) <= (len(LENGTHS) + batch_size * pool - 1) // (
        batch_size * pool
    )


def test_unshuffled_batches_are_length_sorted():
    batches = list(BucketBatchSampler(LENGTHS, 8, shuffle=False))
    lengths = [LENGTHS[i] for batch in batches for i in batch]
    assert lengths == sorted(lengths)


def test_shuffled_batches_are_length_homogeneous():
    # all rows fit in one pool: batches are consecutive runs of the length-sorted rows, so their
    # length ranges do not overlap (only the order of the batches is shuffled)
    batches = list(BucketBatchSampler(LENGTHS, 8, shuffle=True, seed=1, pool=50))
    ranges = sorted((LENGTHS[b].min(), LENGTHS[b].max()) for b in batches)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(ranges, ranges[1:]))
    padding = sum(LENGTHS[b].max() * len(b) - LENGTHS[b].sum() for b in batches)
    shuffled = np.random.default_rng(0).permutation(len(LENGTHS))
    random_padding = sum(LENGTHS[b].max() * len(b) - LENGTHS[b].sum() for b in np.array_split(shuffled, len(batches)))
    assert padding < random_padding / 4


def test_shuffle_differs_per_epoch_and_is_deterministic_by_seed():
    a = BucketBatchSampler(LENGTHS, 8, shuffle=True, seed=5)
    b = BucketBatchSampler(LENGTHS, 8, shuffle=True, seed=5)
    a1, a2 = list(a), list(a)
    assert a1 != a2  # a new order every epoch
    assert list(b) == a1 and list(b) == a2  # same seed, same sequence of epochs
    assert list(BucketBatchSampler(LENGTHS, 8, shuffle=True, seed=6)) != a1
    # batches are shuffled, not just the rows inside them
    assert [min(batch) for batch in a1] != sorted(min(batch) for batch in a1)


def test_unshuffled_order_is_the_same_every_epoch():
    sampler = BucketBatchSampler(LENGTHS, 8, shuffle=False)
    assert list(sampler) == list(sampler)


# --- PadCollator ------------------------------------------------------------------------------------------


def test_pad_collator_pads_to_the_longest_row_with_a_mask():
    rows = [
        (np.array([101, 7, 8, 102], dtype=np.int32), 1, 4),
        (np.array([101, 102], dtype=np.int32), 0, 0),
        (np.array([101, 5, 6, 7, 9, 102], dtype=np.int32), 1, 2),
    ]
    batch = PadCollator(pad_token_id=0)(rows)
    assert batch["input_ids"].shape == (3, 6)
    assert batch["input_ids"].dtype == torch.long
    assert batch["input_ids"].tolist() == [[101, 7, 8, 102, 0, 0], [101, 102, 0, 0, 0, 0], [101, 5, 6, 7, 9, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [1, 0, 1]
    assert batch["index"].tolist() == [4, 0, 2]


def test_pad_collator_uses_the_given_pad_id():
    batch = PadCollator(pad_token_id=99)([(np.array([1, 2, 3], np.int32), 0, 0), (np.array([1], np.int32), 1, 1)])
    assert batch["input_ids"][1].tolist() == [1, 99, 99]
    assert batch["attention_mask"][1].tolist() == [1, 0, 0]


# --- class weights ----------------------------------------------------------------------------------------


def test_balanced_class_weights():
    weights = balanced_class_weights(np.array([75, 25]))
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights, torch.tensor([100 / 150, 100 / 50]))
    # each class contributes the same total weight
    assert float(weights[0] * 75) == pytest.approx(float(weights[1] * 25))
    torch.testing.assert_close(balanced_class_weights([10, 10]), torch.tensor([1.0, 1.0]))


def test_balanced_class_weights_with_an_empty_class_stay_finite():
    weights = balanced_class_weights([40, 0])
    assert torch.isfinite(weights).all()
    assert weights[1] > weights[0]


# --- ClassifierModule: dropout must be active during training (regression) --------------------------------


def _tiny_datamodule(tiny_frames, tokenizer, batch_size=8):
    from fakenews_ml.data.tokenize import tokenize_frame

    splits = {name: tokenize_frame(frame, tokenizer, 32) for name, frame in tiny_frames.items()}
    return NewsDataModule(splits, batch_size, tokenizer.pad_token_id, seed=0)


def test_classifier_module_puts_the_pretrained_encoder_in_train_mode(tiny_model_config):
    model = HeadlineClassifier.from_pretrained(tiny_model_config)
    assert not model.encoder.training  # from_pretrained hands the encoder back in eval mode
    module = ClassifierModule(model, TrainConfig())
    assert all(m.training for m in module.model.modules())
    ids = torch.tensor([[101, 2000, 2001, 2002, 102]])
    mask = torch.ones_like(ids)
    assert not torch.equal(module(ids, mask), module(ids, mask)), "dropout should make two passes differ"


def test_dropout_stays_active_inside_lightning_training(tiny_model_config, tiny_frames, tiny_tokenizer, tmp_path):
    seen = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            dropouts = [m for m in pl_module.model.modules() if isinstance(m, torch.nn.Dropout)]
            seen.append(all(m.training for m in dropouts) and pl_module.model.encoder.training)

    module = ClassifierModule(HeadlineClassifier.from_pretrained(tiny_model_config), TrainConfig(warmup_ratio=0.0))
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=3,
        limit_val_batches=1,
        val_check_interval=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        callbacks=[Probe()],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=_tiny_datamodule(tiny_frames, tiny_tokenizer))
    assert seen == [True, True, True]  # including the step right after a validation pass


def test_training_step_uses_class_weights(tiny_model_config):
    model = HeadlineClassifier.from_pretrained(tiny_model_config)
    module = ClassifierModule(model, TrainConfig(), balanced_class_weights([30, 10]))
    torch.testing.assert_close(module.loss.weight, torch.tensor([40 / 60, 40 / 20]))
    assert ClassifierModule(model, TrainConfig()).loss.weight is None


def _labelled_batch(tokenizer):
    ids, mask = _batch(tokenizer, ["budget vote passes", "celebrity secretly married", "x", "a rather longer headline"])
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 1, 0])}


def test_rdrop_off_is_plain_cross_entropy(tiny_model_config, tiny_tokenizer):
    model = HeadlineClassifier.from_pretrained(tiny_model_config).eval()
    batch, loss_fn = _labelled_batch(tiny_tokenizer), torch.nn.CrossEntropyLoss()
    plain = loss_fn(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
    torch.testing.assert_close(training_loss(model, batch, loss_fn, 0.0), plain)
    # without dropout both passes agree: the KL term vanishes and only the cross-entropy is left
    torch.testing.assert_close(training_loss(model, batch, loss_fn, 5.0), plain)


def test_rdrop_adds_a_positive_kl_term_between_two_dropout_passes(tiny_model_config, tiny_tokenizer):
    model = HeadlineClassifier.from_pretrained(tiny_model_config.model_copy(update={"dropout": 0.3})).train()
    batch, loss_fn = _labelled_batch(tiny_tokenizer), torch.nn.CrossEntropyLoss()
    losses = {}
    for alpha in (1.0, 3.0):
        torch.manual_seed(7)  # the same dropout masks for both weights
        losses[alpha] = training_loss(model, batch, loss_fn, alpha)
    kl = (losses[3.0] - losses[1.0]) / 2
    assert kl > 1e-6
    torch.manual_seed(7)
    first, second = model(batch["input_ids"].repeat(2, 1), batch["attention_mask"].repeat(2, 1)).chunk(2)
    assert not torch.allclose(first, second)  # each copy of a row gets its own dropout mask
    cross_entropy = 0.5 * (loss_fn(first, batch["labels"]) + loss_fn(second, batch["labels"]))
    torch.testing.assert_close(losses[1.0] - kl, cross_entropy)
    losses[3.0].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.head.parameters())
    with pytest.raises(ValueError):
        TrainConfig(rdrop_alpha=-0.5)


def test_datamodule_class_counts(tiny_frames, tiny_tokenizer):
    data = _tiny_datamodule(tiny_frames, tiny_tokenizer)
    counts = data.class_counts()
    assert counts.tolist() == np.bincount(tiny_frames["train"]["label"].astype(int), minlength=2).tolist()
    batch = next(iter(data.val_dataloader()))
    assert batch["input_ids"].shape[0] == 16  # evaluation batches are twice the training size
    split: TokenizedSplit = data.splits["val"]
    # unshuffled evaluation starts with the shortest rows
    assert batch["attention_mask"].sum(1).max() <= np.sort(split.lengths())[15]


# --- precision choice -------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_explicit_precision_is_kept(precision, monkeypatch):
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    assert device.resolve_precision(precision) == precision


@pytest.mark.parametrize(
    "cuda,cuda_bf16,cpu_bf16,accelerator,expected",
    [
        (True, True, False, "auto", "bf16-mixed"),
        (True, False, False, "auto", "16-mixed"),
        (True, True, False, "gpu", "bf16-mixed"),
        (True, True, False, "cuda", "bf16-mixed"),
        (True, True, False, "cpu", "32-true"),  # asked for the CPU: the CPU rule applies
        (True, True, True, "cpu", "bf16-mixed"),
        (False, False, True, "auto", "bf16-mixed"),
        (False, False, False, "auto", "32-true"),
        (False, False, False, "gpu", "32-true"),
    ],
)
def test_auto_precision(cuda, cuda_bf16, cpu_bf16, accelerator, expected, monkeypatch):
    monkeypatch.setattr(device, "cuda_available", lambda: cuda)
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: cpu_bf16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    assert device.resolve_precision("auto", accelerator) == expected


def test_model_config_rejects_unknown_pooling_and_fields():
    with pytest.raises(ValueError):
        ModelConfig(pooling="max")
    with pytest.raises(ValueError):
        ModelConfig(hidden=3)


def test_encoders_without_a_pooler_work_end_to_end(tiny_tokenizer, tmp_path):
    """DistilBERT-style encoders have no pooling layer and reject ``add_pooling_layer``: regression for a
    TypeError when such a hub id or folder was configured."""
    from transformers import DistilBertConfig, DistilBertModel

    from fakenews_ml.bundle import load_bundle, save_bundle

    encoder_dir = tmp_path / "distil"
    config = DistilBertConfig(vocab_size=tiny_tokenizer.vocab_size, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(str(encoder_dir))
    tiny_tokenizer.save_pretrained(str(encoder_dir))
    model_config = ModelConfig(encoder=str(encoder_dir), max_length=16)
    model = HeadlineClassifier.from_pretrained(model_config).eval()
    ids, mask = _batch(tiny_tokenizer, ["one headline", "and a second, longer headline"], max_length=16)
    logits = model(ids, mask)
    assert logits.shape == (2, 2)
    path = save_bundle(
        tmp_path / "bundle",
        model,
        tiny_tokenizer,
        model.encoder.config,
        model_config,
        threshold=0.5,
        metrics={},
        lineage={},
    )
    loaded = load_bundle(path)
    assert type(loaded.model.encoder).__name__ == "DistilBertModel"
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids, mask), logits, rtol=0, atol=0)


def test_distillation_loss_is_hard_cross_entropy_plus_tempered_kl(tiny_model_config, tiny_tokenizer):
    from fakenews_ml.model.lightning_module import SoftTargets

    model = HeadlineClassifier.from_pretrained(tiny_model_config).eval()
    batch, loss_fn = _labelled_batch(tiny_tokenizer), torch.nn.CrossEntropyLoss()
    batch["index"] = torch.tensor([3, 2, 1, 0])  # rows of the train split, in batch order
    logits = model(batch["input_ids"], batch["attention_mask"])
    hard = loss_fn(logits, batch["labels"])

    def targets(probs, labelled=(True,) * 4, soft=0.7, hard_weight=0.3, temperature=2.0):
        return SoftTargets(torch.tensor(probs), torch.tensor(labelled), temperature, soft, hard_weight)

    # a teacher that agrees with the student exactly: the KL term is 0, the cross-entropy is left
    own = torch.softmax(logits, -1)[:, 1].detach()[torch.tensor([3, 2, 1, 0])]  # by row index
    torch.testing.assert_close(training_loss(model, batch, loss_fn, 0.0, targets(own.tolist())), 0.3 * hard)
    # a confident teacher: KL at temperature T, times T^2, computed by hand
    probs = [0.9, 0.2, 0.99, 0.01]  # rows 0..3
    teacher = torch.tensor(probs)[batch["index"]]
    fake = torch.sigmoid(torch.logit(teacher) / 2.0)
    target = torch.stack([1 - fake, fake], -1)
    kl = (target * (target.log() - (logits / 2.0).log_softmax(-1))).sum(-1).mean() * 4.0
    torch.testing.assert_close(training_loss(model, batch, loss_fn, 0.0, targets(probs)), 0.3 * hard + 0.7 * kl)
    # rows without a label (prediction-log titles) only get the soft term
    unlabelled = targets(probs, labelled=(False,) * 4)
    torch.testing.assert_close(training_loss(model, batch, loss_fn, 0.0, unlabelled), 0.7 * kl)


def test_a_student_keeps_the_first_layers_and_starts_from_its_teacher(tiny_model_config):
    from fakenews_ml.train import start_from

    teacher = HeadlineClassifier.from_pretrained(tiny_model_config)
    student = HeadlineClassifier.from_pretrained(tiny_model_config.model_copy(update={"encoder_layers": 1}))
    assert len(student.encoder.encoder.layer) == student.encoder.config.num_hidden_layers == 1
    assert len(teacher.encoder.encoder.layer) == 2
    torch.nn.init.normal_(teacher.head.weight)
    start_from(student, teacher.state_dict())
    for name, tensor in student.state_dict().items():
        torch.testing.assert_close(tensor, teacher.state_dict()[name], msg=name)
    with pytest.raises(ValueError, match="cannot keep 3"):
        HeadlineClassifier.from_pretrained(tiny_model_config.model_copy(update={"encoder_layers": 3}))
