"""The out-of-domain flag on the dashboard: Predict says so under the verdict, Monitoring charts the share per day."""

from __future__ import annotations

import pandas as pd

from dashboards.domain_chart import daily_out_of_domain
from fakenews_ml.predict import Predictor

from .test_pages import classify_headline, log_rows, open_page, page_text

FOREIGN = [
    "Drinking bleach cures COVID-19",
    "qzx vvbn plorkt wubble 7781 zzkj",
    "5G towers spread the coronavirus, doctors confirm",
    "Vitamin C megadoses cure coronavirus overnight",
]
NOTICE = "Outside what this model was trained on"


def test_predict_says_when_a_headline_is_outside_the_training_data(dashboard_home):
    predictor = Predictor.from_path(dashboard_home["champion"], "auto")
    flags = predictor.predict(FOREIGN)["out_of_domain"].tolist()
    assert any(flags), "none of the foreign headlines is out of domain for the dashboard's tiny model"
    outside = FOREIGN[flags.index(True)]
    at = open_page("predict")
    classify_headline(at, outside)
    assert not at.exception
    assert any(NOTICE in w.value for w in at.warning), page_text(at)
    row = log_rows().iloc[0]
    assert row.title == outside and bool(row.out_of_domain) and row.ood_score > predictor.domain_threshold

    inside = "Senate council report on the budget 22-1"
    if not predictor.predict([inside])["out_of_domain"].iloc[0]:
        classify_headline(at, inside)
        assert not any(NOTICE in w.value for w in at.warning)

    monitoring = open_page("monitoring")
    specs = " ".join(c.proto.spec for c in monitoring.get("vega_lite_chart"))
    assert "share out of domain" in specs


def test_daily_share_counts_only_scored_rows():
    frame = pd.DataFrame(
        {
            "created_at": pd.to_datetime(
                ["2026-12-01 10:00", "2026-12-01 23:59", "2026-12-02 00:01", "2026-12-02 08:00", "2026-12-02 09:00"],
                utc=True,
            ),
            "model_version": ["v1"] * 5,
            "out_of_domain": pd.array([True, False, None, True, True], dtype="boolean"),
        }
    )
    daily = daily_out_of_domain(frame)
    assert daily["day"].tolist() == ["2026-12-01", "2026-12-02"]
    assert daily["scored"].tolist() == [2, 2] and daily["share"].tolist() == [0.5, 1.0]
    assert daily_out_of_domain(frame.drop(columns="out_of_domain")).empty
