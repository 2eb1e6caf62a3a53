"""Hostile and careless input over real HTTP: every class of bad request is a 4xx with a JSON message that
names the problem, nothing reaches the log, and the server keeps answering. No input is a 500."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from fakenews_ml.config import ServeConfig
from fakenews_ml.monitoring.prediction_log import PredictionLog

LIMITS = ServeConfig(max_batch=8, max_title_chars=200, max_upload_bytes=200_000, reload_check_s=0.2)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def api(bundles, server_starter, tmp_path_factory):
    from fakenews_ml.serving.app import create_app

    log = PredictionLog(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'predictions.sqlite'}")
    server = server_starter(create_app(bundles["v1"], log, LIMITS))
    yield server
    server.stop()
    log.close()


def logged(api) -> tuple[int, int]:
    api.flush()
    return api.app.state.log.count(), api.app.state.log.feedback_count()


def post_raw(http, api, path: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return http.post(api.url(path), content=body, headers={"content-type": content_type})


def assert_refused(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail, detail


# --- lone UTF-16 surrogates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, where",
    [
        ("/predict", b'{"titles": ["\\ud800"]}', "titles[0]"),
        ("/predict", b'{"titles": ["fine", "half \\udc00 a pair"]}', "titles[1]"),
        ("/predict", b'["ok", "\\uDBFF"]', "the body[1]"),
        ("/predict", b'{"titles": ["ok"], "origin": "\\ud834"}', "origin"),
        ("/predict", b'{"titles": ["ok"], "\\ud800": 1}', "a key of the body"),
        ("/feedback", b'[{"title": "A real title \\ud800", "label": 1}]', "the body[0].title"),
        ("/feedback", b'[{"title": "A real title", "label": 1, "request_id": "\\udfff"}]', "request_id"),
        ("/feedback", b'{"feedback": [{"title": "A real title", "label": 0, "source": "\\ud800x"}]}', "source"),
    ],
)
def test_lone_surrogate_escapes_are_refused_naming_the_field(api, http, path, body, where):
    before = logged(api)
    assert_refused(post_raw(http, api, path, body), 422, where, "lone UTF-16 surrogate")
    assert logged(api) == before


@pytest.mark.parametrize(
    "path, body",
    [
        ("/predict", '{"titles": ["A title \ud800"]}'.encode("utf-8", "surrogatepass")),  # encoded surrogate bytes
        ("/feedback", '[{"title": "A title \udcff", "label": 1}]'.encode("utf-8", "surrogatepass")),
        ("/predict", b'{"titles": ["Caf\xe9"]}'),  # latin-1 bytes
    ],
)
def test_bodies_that_are_not_utf8_are_refused(api, http, path, body):
    before = logged(api)
    assert_refused(post_raw(http, api, path, body), 400, "not UTF-8")
    assert logged(api) == before


def test_a_surrogate_pair_is_a_character_and_is_fine(api, http):
    response = post_raw(http, api, "/predict", b'{"titles": ["Rocket \\ud83d\\ude80 launch"]}')
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["title"] == "Rocket \U0001f680 launch"


@pytest.mark.parametrize(
    "csv_bytes",
    ["title\nA title \ud800\n".encode("utf-8", "surrogatepass"), b"title\nA title \xed\xbf\xbf\n"],
)
def test_surrogates_in_csv_bytes_are_refused(api, http, csv_bytes):
    before = logged(api)
    response = http.post(api.url("/predict/csv"), files={"file": ("s.csv", csv_bytes, "text/csv")})
    assert_refused(response, 422, "s.csv: not valid UTF-8")
    assert logged(api) == before


# --- titles with no word characters ----------------------------------------------------------------------

WORDLESS = {
    "emoji": "🔥🔥🔥",
    "emoji with spaces": " 😀 🎉 ",
    "nul only": "\x00\x00",
    "zero-width only": "\u200b\u200c\u200d",
    "soft hyphens": "\u00ad\u00ad",
    "byte order mark": "\ufeff",
    "hangul filler": "\u3164\u3164",
    "punctuation": "?!... --- ***",
    "combining marks": "\u0301\u0308",
    "underscores": "___",
}


@pytest.mark.parametrize("title", list(WORDLESS.values()), ids=list(WORDLESS))
def test_titles_without_letters_or_digits_are_refused_everywhere(api, http, title):
    before = logged(api)
    expected = "contains a NUL character" if "\x00" in title else "has no letters or digits"
    assert_refused(
        http.post(api.url("/predict"), json={"titles": ["A fine headline", title]}), 422, "headline 1", expected
    )
    assert_refused(http.post(api.url("/predict"), json=[title]), 422, "headline 0", expected)
    upload = io.StringIO()
    csv.writer(upload).writerows([["title", "n"], ["A fine headline", "1"], [title, "2"]])
    response = http.post(api.url("/predict/csv"), files={"file": ("w.csv", upload.getvalue().encode(), "text/csv")})
    assert_refused(response, 422, "w.csv: the title on CSV line 3", expected)
    assert_refused(
        http.post(api.url("/feedback"), json=[{"title": title, "label": 1}]), 422, "feedback row 0", expected
    )
    assert logged(api) == before


@pytest.mark.parametrize(
    "title", ["a\x00b", "Headline with a NUL\x00", "\x00Leading NUL and words"], ids=["inside", "end", "start"]
)
def test_a_nul_anywhere_in_a_title_is_refused(api, http, title):
    before = logged(api)
    assert_refused(http.post(api.url("/predict"), json={"titles": [title]}), 422, "NUL")
    assert logged(api) == before


@pytest.mark.parametrize("title", ["2024", "Ünïcödé", "数字 新闻", "Ｆｕｌｌｗｉｄｔｈ", "🔥 Fire 🔥", "x"])
def test_titles_with_any_letter_or_digit_are_classified(api, http, title):
    response = http.post(api.url("/predict"), json={"titles": [title]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["title"] == title


def test_the_predictor_applies_the_same_rule(bundles):
    from fakenews_ml.errors import InputError
    from fakenews_ml.predict import Predictor

    predictor = Predictor.from_path(bundles["v1"], "fp32")
    for name, title in WORDLESS.items():
        with pytest.raises(InputError, match="headline 1 (has no letters or digits|contains a NUL)"):
            predictor.predict(["A fine headline", title])
        assert name


# --- integers too large for any field, out-of-range ids ---------------------------------------------------


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ([{"title": "A real headline", "label": 10**30}], 422, "label must be 0 (real) or 1 (fake)"),
        ([{"title": "A real headline", "label": -(10**30)}], 422, "label must be 0"),
        ([{"title": "A real headline", "label": 1, "prediction_id": 10**30}], 422, "prediction_id must be a positive"),
        ([{"title": "A real headline", "label": 1, "prediction_id": 2**63}], 422, "at most 9223372036854775807"),
        ([{"title": "A real headline", "label": 1, "prediction_id": 2**63 - 1}], 422, "not in the prediction log"),
        ([{"title": "A real headline", "label": 1, "prediction_id": 2**31}], 422, "not in the prediction log"),
        ([{"title": "A real headline", "label": 1, "prediction_id": 0}], 422, "prediction_id must be a positive"),
        ([{"title": "A real headline", "label": 1, "prediction_id": -5}], 422, "prediction_id must be a positive"),
        ([{"title": "A real headline", "label": 1, "prediction_id": 1.5}], 422, "prediction_id must be a positive"),
        ([{"label": 1, "request_id": "r" * 65}], 422, "request_id must be a non-empty string of at most 64"),
    ],
)
def test_out_of_range_numbers_and_ids_in_feedback(api, http, body, status, fragment):
    before = logged(api)
    assert_refused(http.post(api.url("/feedback"), json=body), status, fragment)
    assert logged(api) == before


@pytest.mark.parametrize(
    "path, body",
    [
        ("/predict", b"[" + b"9" * 5000 + b"]"),
        ("/predict", b'{"titles": ["ok"], "origin": ' + b"1" * 4400 + b"}"),
        ("/feedback", b'[{"title": "A real headline", "label": ' + b"1" * 4400 + b"}]"),
        ("/feedback", b'[{"title": "A real headline", "label": 1, "prediction_id": ' + b"7" * 6000 + b"}]"),
    ],
)
def test_numbers_past_pythons_digit_limit_are_a_400(api, http, path, body):
    before = logged(api)
    assert_refused(post_raw(http, api, path, body), 400, "not valid JSON", "more digits than any field takes")
    assert logged(api) == before


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_are_refused(api, http, constant):
    response = post_raw(http, api, "/feedback", b'[{"title": "A real headline", "label": ' + constant + b"}]")
    assert_refused(response, 400, f"{constant.decode()} is not a JSON value")


# --- CSV rows that do not fit the header ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"title,outlet\nTrump, Clinton meet,CNN\n", "CSV line 2 has 3 fields but the header has 2"),
        (b"id,title\n1,Fine\n2,Trump, Clinton, Sanders debate\n", "CSV line 3 has 4 fields"),
        (b"title,outlet\nOnly the title\n", "CSV line 2 has 1 field but the header has 2"),
        (b'title,n\n"multi\nline",1\nshort\n', "CSV line 4 has 1 field"),  # counted from the real line
        (b'title,n\n"never closed,1\n', "CSV line 2 is not a readable CSV row"),
        (b"title,title\na,b\n", "appear more than once in the header"),
        (b"," * 150_000 + b"\nx\n", "the header has 150,001 columns"),
    ],
)
def test_csv_rows_that_do_not_fit_are_refused_naming_the_line(api, http, content, fragment):
    before = logged(api)
    response = http.post(api.url("/predict/csv"), content=content, headers={"content-type": "text/csv"})
    assert_refused(response, 422, "uploaded CSV", fragment)
    assert logged(api) == before


@pytest.mark.parametrize(
    "line",
    [
        "Trump, Clinton meet in Ohio",
        'Breaking: "Senate", House agree',
        '"Quoted part", unquoted part',
        "a,b,c,d,e,f,g,h",
    ],
)
def test_a_one_column_csv_reads_each_line_whole(api, http, line):
    response = http.post(
        api.url("/predict/csv"),
        content=f"title\n{line}\nSecond headline\n".encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    out = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["title"] for row in out] == [line, "Second headline"]  # never a shorter title
    api.flush()
    assert list(api.app.state.log.by_request(response.headers["x-request-id"])["title"]) == [line, "Second headline"]


@pytest.mark.parametrize(
    "columns", [["title", "prob_fake", "prob_fake_input"], ["title", "label", "label_input", "label_input_2"]]
)
def test_input_columns_named_like_outputs_never_collide(api, http, columns):
    upload = ",".join(columns) + "\nA headline," + ",".join(str(i) for i in range(len(columns) - 1)) + "\n"
    response = http.post(api.url("/predict/csv"), content=upload.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    header = next(csv.reader(io.StringIO(response.text)))
    assert len(header) == len(set(header)) == len(columns) + 2  # every input column kept, under its own name
    assert header[-2:] == ["prob_fake", "label"]


def test_an_upload_of_several_files_is_refused_not_cut_to_one(api, http):
    before = logged(api)
    files = [
        ("file", ("a.csv", b"title\nFirst file\n", "text/csv")),
        ("more", ("b.csv", b"title\nSecond\n", "text/csv")),
    ]
    assert_refused(http.post(api.url("/predict/csv"), files=files), 422, "2 files in the upload")
    assert logged(api) == before


# --- a sweep: whatever arrives, the answer is never a 5xx ---------------------------------------------------

SWEEP_JSON = [
    b"{}",
    b"[]",
    b"null",
    b"0",
    b'"string"',
    b"[[[]]]",
    b'{"titles": {}}',
    b'{"titles": [[]]}',
    b'{"titles": [{}]}',
    b'{"titles": [true]}',
    b'{"titles": ["x"], "origin": []}',
    b'{"titles": ["x"], "origin": ""}',
    b'{"feedback": []}',
    b'[{"title": "x", "label": 1, "prediction_id": true}]',
    b'[{"title": ["x"], "label": 1}]',
    b'[{"title": "Fine title", "label": "1"}]',
    b'[{"title": "Fine title", "label": 1, "source": 7}]',
    b'[{"title": "Fine title", "label": 1, "source": "' + b"s" * 200 + b'"}]',
    b'[{"title": "Fine title", "label": 1, "source": "nul\\u0000"}]',
    b'[{"title": "Fine title", "label": 1, "request_id": "nul\\u0000"}]',
    b'\xef\xbb\xbf["BOM then JSON"]',
    b'{"titles": ["\\u2028\\u2029"]}',
    b'{"titles": ["' + "é".encode() * 300 + b'"]}',
]


@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_sweep_of_odd_json_never_gets_a_5xx(api, http, path):
    statuses = {}
    for body in SWEEP_JSON:
        response = post_raw(http, api, path, body)
        statuses[body[:40]] = response.status_code
        assert response.status_code < 500, (body, response.text)
        if response.status_code >= 400:
            assert isinstance(response.json()["detail"], str)
    assert any(400 <= s < 500 for s in statuses.values())
    assert http.get(api.url("/health")).status_code == 200


def test_responses_are_valid_utf8_json(api, http):
    titles = [
        "Rocket \U0001f680 launch",
        "Ｆｕｌｌ ｗｉｄｔｈ",
        "Arabic \u0627\u0644\u062e\u0628\u0631",
        "Zero\u200bwidth inside",
    ]
    response = http.post(api.url("/predict"), json={"titles": titles})
    assert response.status_code == 200, response.text
    assert [item["title"] for item in json.loads(response.content.decode("utf-8"))["predictions"]] == titles


PIECES = [
    "a",
    "Z",
    "0",
    " ",
    ",",
    '"',
    "\n",
    "\r",
    "\x00",
    "\u200b",
    "\u00ad",
    "😀",
    "é",
    "ф",
    "\ud800",
    "\udfff",
    "\\",
]


def _random_text(rnd) -> str:
    return "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 10)))


def _random_value(rnd, depth: int = 0):
    kind = rnd.randint(0, 8 if depth < 3 else 4)
    if kind == 0:
        return rnd.choice([None, True, False, 0, 1, -1, 2**31, 2**63, 10**30, 1.5, 1e308])
    if kind in (1, 2, 3, 4):
        return _random_text(rnd)
    if kind in (5, 6):
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    keys = ["title", "titles", "label", "origin", "prediction_id", "request_id", "source", "feedback"]
    return {rnd.choice([*keys, _random_text(rnd)]): _random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


@pytest.mark.parametrize("seed", range(3))
def test_random_requests_never_get_a_5xx(api, http, seed):
    import random

    rnd = random.Random(seed)
    statuses = set()
    for _ in range(150):
        path = rnd.choice(["/predict", "/feedback", "/predict/csv"])
        if path == "/predict/csv":
            rows = [",".join(_random_text(rnd) for _ in range(rnd.randint(0, 3))) for _ in range(rnd.randint(0, 5))]
            body, content_type = "\n".join([rnd.choice(["title", "title,label", "x"]), *rows]), "text/csv"
        else:
            value = _random_value(rnd)
            if rnd.random() < 0.4:  # near-valid shapes reach deeper checks
                value = {"titles": [_random_text(rnd) for _ in range(rnd.randint(1, 4))]}
                if path == "/feedback":
                    value = [{"title": _random_text(rnd), "label": rnd.choice([0, 1, 2, None])}]
            body, content_type = json.dumps(value, ensure_ascii=rnd.random() < 0.5), "application/json"
        response = post_raw(http, api, path, body.encode("utf-8", "surrogatepass"), content_type)
        statuses.add(response.status_code)
        assert response.status_code < 500, (path, body[:200], response.text)
        if response.status_code >= 400:
            assert response.json()["detail"], response.text
    assert statuses & {400, 422}
