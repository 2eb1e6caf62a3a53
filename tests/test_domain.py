"""The out-of-domain score: fitted into the bundle at training time, calibrated on val, served from the
embedding of the classifier's own pass, returned by the CLI and the API, logged (old logs stay readable)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from fakenews_ml.bundle import load_bundle
from fakenews_ml.cli import main
from fakenews_ml.errors import BundleError
from fakenews_ml.model.domain import DOMAIN_FILE, fit_domain
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.predict import Predictor

FOREIGN = [
    "Drinking bleach cures COVID-19",
    "5G towers spread the coronavirus, doctors confirm",
    "Hydroxychloroquine prevents covid infection in 100% of patients",
    "Wearing masks causes oxygen deficiency and pneumonia",
    "qzx vvbn plorkt wubble 7781 zzkj",
    "xkq jjw prrt 0 0 0 bbbbbbbbbb",
    "Gargling salt water kills the virus in the throat",
    "Vitamin C megadoses cure coronavirus overnight",
]


def test_fit_flags_points_far_from_the_training_cloud():
    rng = np.random.default_rng(0)
    home, away = np.eye(16)[0] * 3, np.eye(16)[1] * 3  # the score looks at directions, not lengths

    def cloud(centre, n):
        return rng.normal(size=(n, 16)) * 0.5 + centre

    profile = fit_domain(cloud(home, 500), (val := cloud(home, 200)), percentile=99)
    assert np.mean(profile.flags(profile.score(val))) == pytest.approx(0.01, abs=0.011)
    assert not profile.flags(profile.score(cloud(home, 200) * 5)).mean() > 0.05  # longer, same direction
    assert profile.flags(profile.score(cloud(away, 50))).all()


def test_foreign_text_scores_above_the_threshold_and_in_domain_below(tiny_bundle, tiny_frames):
    predictor = Predictor.from_path(tiny_bundle, "fp32")
    assert predictor.domain_threshold is not None and predictor.domain_threshold > 0
    home = predictor.predict(tiny_frames["test"]["title"].tolist())
    away = predictor.predict(FOREIGN)
    threshold = predictor.domain_threshold
    assert home["ood_score"].median() < threshold < away["ood_score"].median()
    assert away["out_of_domain"].mean() >= 0.5 > 0.1 >= home["out_of_domain"].mean()
    # the embedding comes from the classifier's own pass: same probabilities as the plain forward
    plain = Predictor.from_path(tiny_bundle, "fp32")
    plain.forward_model = plain.bundle.model
    np.testing.assert_allclose(plain.predict_proba(FOREIGN), away["prob_fake"], atol=1e-5)


def test_cli_predict_returns_the_fields(tiny_bundle, capsys):
    assert main(["predict", "--model", str(tiny_bundle), "Drinking bleach cures COVID-19"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert isinstance(answer["ood_score"], float) and isinstance(answer["out_of_domain"], bool)


def test_api_returns_the_fields(tiny_bundle, tmp_path):
    from fastapi.testclient import TestClient

    from fakenews_ml.serving.app import create_app

    log = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite'}")
    with TestClient(create_app(tiny_bundle, log), base_url="http://127.0.0.1:8000") as client:
        body = client.post("/predict", json={"titles": FOREIGN[:2]}).json()
        assert "predictions" in body, body
        assert all(isinstance(p["ood_score"], float) for p in body["predictions"])
        assert all(isinstance(p["out_of_domain"], bool) for p in body["predictions"])
        upload = client.post(
            "/predict/csv", content=b"title\nDrinking bleach cures COVID-19\n", headers={"content-type": "text/csv"}
        )
        assert upload.text.splitlines()[0] == "title,prob_fake,label,ood_score,out_of_domain", upload.text
        assert client.get("/health?flush=10").json()["out_of_domain_threshold"] > 0
    logged = log.recent(10)
    assert len(logged) == 3
    assert logged["ood_score"].notna().all() and logged["out_of_domain"].notna().all()


def test_a_bundle_without_a_profile_still_serves(tiny_bundle_copy):
    meta_file = tiny_bundle_copy / "bundle.json"
    meta = json.loads(meta_file.read_text())
    meta["domain_sha256"] = None  # as bundles trained before the profile existed
    meta_file.write_text(json.dumps(meta))
    (tiny_bundle_copy / DOMAIN_FILE).unlink()
    frame = Predictor.from_path(tiny_bundle_copy, "fp32").predict(["Senate passes budget"])
    assert list(frame.columns) == ["prob_fake", "label"]


def test_a_tampered_profile_is_refused(tiny_bundle_copy):
    data = bytearray((tiny_bundle_copy / DOMAIN_FILE).read_bytes())
    data[-1] ^= 0xFF
    (tiny_bundle_copy / DOMAIN_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=DOMAIN_FILE):
        load_bundle(tiny_bundle_copy)


def test_a_log_from_before_the_score_is_migrated_and_readable(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:  # the schema of the first release
        old.execute(
            "CREATE TABLE predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, request_id VARCHAR(64) NOT NULL, "
            "created_at DATETIME NOT NULL, title TEXT NOT NULL, prob_fake FLOAT NOT NULL, label SMALLINT NOT NULL, "
            "model_version VARCHAR(128) NOT NULL, origin VARCHAR(32) NOT NULL)"
        )
        old.execute(
            "INSERT INTO predictions (request_id, created_at, title, prob_fake, label, model_version, origin) "
            "VALUES ('r0', '2026-01-02 10:00:00', 'Old headline', 0.2, 0, 'v0', 'api')"
        )
    with PredictionLog(f"sqlite:///{path}") as log:
        log.log_predictions(
            [
                {
                    "request_id": "r1",
                    "title": "New headline",
                    "prob_fake": 0.9,
                    "label": 1,
                    "model_version": "v1",
                    "ood_score": 12.5,
                    "out_of_domain": True,
                }
            ]
        )
        frame = log.recent(5).set_index("request_id")
    assert np.isnan(frame.loc["r0", "ood_score"]) and frame.loc["r0", "out_of_domain"] is pd_na()
    assert frame.loc["r1", "ood_score"] == 12.5 and bool(frame.loc["r1", "out_of_domain"])


def pd_na():
    import pandas as pd

    return pd.NA


def test_an_int8_variant_scores_too_and_loads_without_library_noise(tiny_bundle_copy, tiny_frames):
    import warnings

    from fakenews_ml.config import QuantizeConfig
    from fakenews_ml.quantize import quantize_bundle

    quantize_bundle(tiny_bundle_copy, tiny_frames["test"], QuantizeConfig(variants=["int8"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = Predictor.from_path(tiny_bundle_copy, "int8")
    assert [str(w.message) for w in caught] == []
    assert predictor.bundle.variant == "int8" and predictor.domain_threshold is not None
    home = predictor.predict(tiny_frames["test"]["title"].tolist())["ood_score"].median()
    assert home < predictor.domain_threshold < predictor.predict(FOREIGN)["ood_score"].median()
