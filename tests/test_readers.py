"""Readers: every supported layout into the canonical frame, and every failure as a clear error."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest

from fakenews_ml.data.readers import (
    CANONICAL_COLUMNS,
    canonicalize,
    read_news_file,
    read_sources,
)
from fakenews_ml.errors import DataSourceError, FakeNewsError, SchemaError

CANONICAL_DTYPES = {
    "id": pd.StringDtype(),
    "title": pd.StringDtype(),
    "text": pd.StringDtype(),
    "label": "int8",
    "source": pd.StringDtype(),
}


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_canonical(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == CANONICAL_COLUMNS
    for column, dtype in CANONICAL_DTYPES.items():
        assert frame[column].dtype == dtype, (column, frame[column].dtype)
    assert set(frame["label"].unique()) <= {0, 1}
    assert not frame["title"].isna().any()
    assert (frame["title"].str.len() > 0).all()
    assert (frame["title"] == frame["title"].str.strip()).all()
    assert not frame["text"].isna().any()
    assert not frame["source"].isna().any()
    assert frame["id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0


# --- real files ------------------------------------------------------------------------------------------


def test_welfake_original_layout(datasets_dir):
    path = datasets_dir / "WELFake_Dataset_sample_1000.csv"
    # The raw file, read with plain pandas (not the project's reader): index column first, 1 = fake.
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(raw.columns) == ["Unnamed: 0", "title", "text", "label"]
    assert len(raw) == 1000
    raw = raw.set_index("Unnamed: 0")
    assert raw.loc["1", "label"] == "1"  # row 1 is fake (and has an empty title)
    assert raw.loc["1", "title"].strip() == ""
    assert raw.loc["0", "title"].startswith("LAW ENFORCEMENT ON HIGH ALERT") and raw.loc["0", "label"] == "1"
    assert raw.loc["3", "title"].startswith("Bobby Jindal") and raw.loc["3", "label"] == "0"
    has_title = raw["title"].str.strip() != ""
    empty_titles = int((~has_title).sum())
    fakes_with_title = int((has_title & (raw["label"] == "1")).sum())

    frame = read_news_file(path)

    assert_canonical(frame)
    assert "Unnamed: 0" not in frame.columns
    assert empty_titles == 11
    assert frame.attrs["dropped_empty_titles"] == empty_titles
    assert len(frame) == 1000 - empty_titles
    assert int(frame["label"].sum()) == fakes_with_title == 523
    assert set(frame["source"]) == {"WELFake_Dataset_sample_1000"}
    # Label direction survives the reader: the known fake and real rows keep their labels.
    law = frame[frame["title"].str.startswith("LAW ENFORCEMENT ON HIGH ALERT")]
    jindal = frame[frame["title"].str.startswith("Bobby Jindal")]
    assert law["label"].tolist() == [1]
    assert jindal["label"].tolist() == [0]
    assert (frame["text"].str.len() > 0).mean() > 0.9  # full article bodies carried through
    # WELFake repeats some articles verbatim: equal ids only ever mean equal title and text.
    per_id = frame.groupby("id")[["title", "text"]].nunique()
    assert (per_id == 1).all().all()
    assert frame["id"].nunique() > 900


def test_normalised_layout_fakenewsnet(datasets_dir):
    frame = read_news_file(datasets_dir / "fakenewsnet_titles.csv")
    assert_canonical(frame)
    assert len(frame) == 18_981
    assert int(frame["label"].sum()) == 4_582
    assert frame.attrs["dropped_empty_titles"] == 0
    # the file's own source column wins over the file name
    assert set(frame["source"]) == {"FakeNewsNet", "FakeNewsNet-GossipCop", "FakeNewsNet-PolitiFact"}
    assert (frame["text"] == "").all()


def test_read_sources_local_real_files(datasets_dir):
    uris = [str(datasets_dir / "fakenewsnet_titles.csv"), str(datasets_dir / "WELFake_Dataset_sample_1000.csv")]
    frame, resolved = read_sources(uris, progress=False)
    assert_canonical(frame)
    assert len(frame) == 18_981 + 989
    assert [r.uri for r in resolved] == uris
    for source in resolved:
        assert source.sha256 == hashlib.sha256(source.path.read_bytes()).hexdigest()
    assert (frame["source"] == "WELFake_Dataset_sample_1000").sum() == 989


# --- layouts written here ------------------------------------------------------------------------------


def test_plain_title_label_csv(tmp_path):
    path = write_csv(tmp_path / "plain.csv", "title,label\nAliens built the pyramids,1\nParliament passes budget,0\n")
    frame = read_news_file(path)
    assert_canonical(frame)
    assert frame["title"].tolist() == ["Aliens built the pyramids", "Parliament passes budget"]
    assert frame["label"].tolist() == [1, 0]
    assert (frame["text"] == "").all()
    assert set(frame["source"]) == {"plain"}
    assert frame.attrs["dropped_empty_titles"] == 0


def test_source_name_argument_and_empty_source_cells(tmp_path):
    path = write_csv(tmp_path / "mixed.csv", "title,text,label,source\nA headline,,0,Wire\nAnother one,,1,\n")
    frame = read_news_file(path, source_name="fallback")
    assert frame["source"].tolist() == ["Wire", "fallback"]
    assert frame["text"].tolist() == ["", ""]


def test_extra_columns_ignored_and_headers_case_insensitive(tmp_path):
    path = write_csv(
        tmp_path / "extra.csv",
        " Title ,Author,LABEL,publish_date,Text\n"
        "  Padded headline  ,Someone,fake,2020-01-01,body one\n"
        "Plain headline,Nobody,real,2020-01-02,\n",
    )
    frame = read_news_file(path)
    assert_canonical(frame)
    assert frame["title"].tolist() == ["Padded headline", "Plain headline"]  # stripped
    assert frame["text"].tolist() == ["body one", ""]
    assert frame["label"].tolist() == [1, 0]
    assert not {"Author", "publish_date"} & set(frame.columns)


@pytest.mark.parametrize(
    ("raw_label", "expected"),
    [
        ("1", 1),
        ("0", 0),
        ("fake", 1),
        ("real", 0),
        ("FAKE", 1),
        (" Real ", 0),
        ("1.0", 1),
        ("0.0", 0),
        ("1.00", 1),
        ("true", 0),
        ("False", 1),
    ],
)
def test_label_spellings(tmp_path, raw_label, expected):
    path = write_csv(tmp_path / "labels.csv", f'title,label\nSome headline,"{raw_label}"\n')
    assert read_news_file(path)["label"].tolist() == [expected]


def test_quoted_fields_with_commas_and_newlines(tmp_path):
    path = write_csv(
        tmp_path / "quoted.csv",
        'title,text,label\n"Comma, in ""quotes""","line one\nline two",1\nSecond,x,0\n',
    )
    frame = read_news_file(path)
    assert frame["title"].tolist() == ['Comma, in "quotes"', "Second"]
    assert frame["text"].tolist() == ["line one\nline two", "x"]


def test_utf8_bom_and_non_ascii_titles(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("title,label\nCafé déjà vu,0\nНовости дня,1\n".encode("utf-8-sig"))
    frame = read_news_file(path)
    assert frame["title"].tolist() == ["Café déjà vu", "Новости дня"]


def test_row_ids_are_deterministic_and_content_based(tmp_path):
    a = write_csv(tmp_path / "a.csv", "title,text,label\nSame,body,1\nSame,other body,1\n")
    b = write_csv(tmp_path / "b.csv", "title,text,label\nSame,body,0\n")
    ids_a = read_news_file(a)["id"].tolist()
    assert ids_a == read_news_file(a)["id"].tolist()
    assert ids_a[0] != ids_a[1]  # text is part of the id
    assert read_news_file(b)["id"].tolist() == [ids_a[0]]  # same title+text, same id


def test_empty_titles_dropped_and_counted_even_with_junk_labels(tmp_path):
    path = write_csv(
        tmp_path / "gaps.csv",
        "title,label\nKept one,1\n,1\n   ,0\n,not-a-label\nKept two,0\n",
    )
    frame = read_news_file(path)
    assert frame["title"].tolist() == ["Kept one", "Kept two"]
    assert frame.attrs["dropped_empty_titles"] == 3


def test_canonicalize_dataframe_with_numeric_labels():
    raw = pd.DataFrame({"Title": ["x one", "x two", "x three"], "label": [1, 0.0, 1.0]})
    frame = canonicalize(raw, "memory")
    assert_canonical(frame)
    assert frame["label"].tolist() == [1, 0, 1]
    assert set(frame["source"]) == {"memory"}


# --- errors ---------------------------------------------------------------------------------------------


def test_errors_share_a_base_class():
    assert issubclass(SchemaError, FakeNewsError) and issubclass(DataSourceError, FakeNewsError)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataSourceError, match="source file not found") as info:
        read_news_file(missing)
    assert str(missing) in str(info.value)


def test_missing_column_names_it_and_the_columns_found(tmp_path):
    path = write_csv(tmp_path / "nolabel.csv", "headline,label_text,body\nx,1,y\n")
    with pytest.raises(SchemaError) as info:
        read_news_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "missing column(s) ['title', 'label']" in message
    assert "found ['headline', 'label_text', 'body']" in message


def test_missing_label_column_only(tmp_path):
    path = write_csv(tmp_path / "nolabel.csv", "title,text\nx,y\n")
    with pytest.raises(SchemaError, match=re.escape("missing column(s) ['label']; found ['title', 'text']")):
        read_news_file(path)


def test_unknown_label_values_are_named(tmp_path):
    path = write_csv(tmp_path / "odd.csv", "title,label\na,1\nb,maybe\nc,satire\nd,maybe\ne,2\n")
    with pytest.raises(SchemaError) as info:
        read_news_file(path)
    message = str(info.value)
    assert "4 row(s) have unknown label values ['2', 'maybe', 'satire']" in message
    assert "expected 0/1 (1 = fake) or real/fake" in message


def test_missing_label_value_is_an_unknown_label(tmp_path):
    path = write_csv(tmp_path / "blank.csv", "title,label\na,1\nb,\n")
    with pytest.raises(SchemaError, match=r"1 row\(s\) have unknown label values"):
        read_news_file(path)


@pytest.mark.parametrize("content", ["", "\n\n", "   \n"])
def test_empty_file(tmp_path, content):
    path = write_csv(tmp_path / "empty.csv", content)
    with pytest.raises(SchemaError, match="the file is empty"):
        read_news_file(path)


def test_header_only_file_gives_an_empty_canonical_frame(tmp_path):
    path = write_csv(tmp_path / "header.csv", "title,text,label\n")
    frame = read_news_file(path)
    assert frame.empty
    assert list(frame.columns) == CANONICAL_COLUMNS
    assert frame["label"].dtype == "int8"
    assert frame.attrs["dropped_empty_titles"] == 0


def test_only_empty_titles_is_an_error(tmp_path):
    path = write_csv(tmp_path / "blank_titles.csv", "title,label\n,1\n  ,0\n")
    with pytest.raises(SchemaError, match="no rows with a non-empty title"):
        read_news_file(path)


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"title,label\nCaf\xe9 opens,0\n")
    with pytest.raises(SchemaError) as info:
        read_news_file(path)
    message = str(info.value)
    assert "not valid UTF-8" in message
    assert "byte 15" in message and "\\xe9" in message
    assert "re-save the file as UTF-8" in message


def test_unparseable_csv(tmp_path):
    path = write_csv(tmp_path / "broken.csv", 'title,label\n"never closed,1\n')
    with pytest.raises(SchemaError, match="not a readable CSV"):
        read_news_file(path)


def test_read_sources_needs_uris():
    with pytest.raises(DataSourceError, match="no data sources given"):
        read_sources([])


def test_read_sources_all_header_only(tmp_path):
    a = write_csv(tmp_path / "a.csv", "title,label\n")
    b = write_csv(tmp_path / "b.csv", "title,label\n")
    with pytest.raises(SchemaError, match="no usable rows in"):
        read_sources([str(a), str(b)], progress=False)


def test_read_sources_mixes_layouts_and_skips_header_only(tmp_path):
    a = write_csv(tmp_path / "first.csv", "title,label\nOne,1\n")
    b = write_csv(tmp_path / "header_only.csv", "title,text,label\n")
    c = write_csv(tmp_path / "third.csv", ",title,text,label\n0,Two,body,0\n")
    frame, resolved = read_sources([str(a), str(b), c.as_uri()], progress=False)
    assert_canonical(frame)
    assert frame["title"].tolist() == ["One", "Two"]
    assert frame["source"].tolist() == ["first", "third"]
    assert len(resolved) == 3


def test_read_sources_percent_encoded_file_uri(tmp_path):
    path = write_csv(tmp_path / "my data.csv", "title,label\nSpaced,1\n")
    frame, resolved = read_sources([path.as_uri()], progress=False)
    assert "%20" in path.as_uri()
    assert frame["source"].tolist() == ["my data"]
    assert resolved[0].path == path.resolve()
