"""No silent truncation: a CSV row that does not fit its header is an error naming its line, and in a one-column
file every line is read whole. Checked in the parser, ``fakenews predict --input`` and ``fakenews feedback
import`` (the API's upload is checked in tests/serving/test_hostile_inputs.py)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from fakenews_ml.cli import main
from fakenews_ml.errors import SchemaError
from fakenews_ml.monitoring.prediction_log import PredictionLog
from fakenews_ml.tables import csv_line, parse_csv_bytes, require_titles, with_outputs

# --- the parser -------------------------------------------------------------------------------------------

ONE_COLUMN_LINES = [
    "Trump, Clinton meet in Ohio",
    "Senate, House agree on budget, again",
    'Breaking: "Senate", House agree',
    '"Quoted part", unquoted part',
    'He said "no" loudly',
    "trailing comma,",
    ",leading comma",
]


@pytest.mark.parametrize("line", ONE_COLUMN_LINES)
def test_a_one_column_file_reads_every_line_whole(line):
    frame = parse_csv_bytes(f"title\n{line}\nNext headline\n".encode(), "f.csv")
    assert frame["title"].tolist() == [line, "Next headline"]
    assert [csv_line(frame, i) for i in range(2)] == [2, 3]


def test_a_stray_quote_on_the_last_line_is_read_whole_and_elsewhere_is_an_error():
    frame = parse_csv_bytes(b'title\nFirst\n"Stray quote at the end\n', "f.csv")
    assert frame["title"].tolist() == ["First", '"Stray quote at the end']
    # before other lines it would swallow them into one value: an error naming the line, never a merge
    with pytest.raises(SchemaError, match="CSV line 2: a quoted value runs over 3 lines"):
        parse_csv_bytes(b'title\n"Stray quote\nSecond\nThird\n', "f.csv")


@pytest.mark.parametrize(
    "field, value",
    [('"Properly, quoted"', "Properly, quoted"), ('"Two ""quoted"" words"', 'Two "quoted" words'), ("Plain", "Plain")],
)
def test_a_one_column_file_still_reads_quoted_values(field, value):
    assert parse_csv_bytes(f"title\n{field}\n".encode(), "f.csv")["title"].tolist() == [value]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("title,outlet\nTrump, Clinton meet,CNN\n", "CSV line 2 has 3 fields but the header has 2"),
        ("id,title,label\n1,Fine,0\n2,Trump, Clinton,1\n", "CSV line 3 has 4 fields but the header has 3"),
        ("title,outlet\nNo outlet given\n", "CSV line 2 has 1 field but the header has 2"),
        ("title,label\nFine,1\n\n\nShort\n", "CSV line 5 has 1 field"),  # blank lines counted
        ('title,label\n"Two\nlines",1\n"Three\nmore\nlines",0\nshort\n', "CSV line 7 has 1 field"),
        ('title,label\n"never closed,1\nnext,0\n', "CSV line 2 is not a readable CSV row"),
        ('title,label\n"quoted"then text,1\n', "CSV line 2 is not a readable CSV row"),
        ('title\n"opened\nnever, closed\n', "CSV line 2: a quoted value runs over 2 lines"),
        ('"title\nx\n', "the header line is not valid CSV"),
        ("title,label,title\na,1,b\n", "['title'] appear more than once"),
        ("title," + ",".join(f"c{i}" for i in range(1000)) + "\n", "the header has 1,001 columns"),
        ("\n\n  \n", "the file is empty"),
    ],
)
def test_rows_that_do_not_fit_are_errors_naming_the_line(content, fragment):
    with pytest.raises(SchemaError) as info:
        parse_csv_bytes(content.encode(), "f.csv")
    assert str(info.value).startswith("f.csv: ") and fragment in str(info.value)


def test_line_numbers_follow_the_file_not_the_row_count():
    content = 'title,label\n\n"Spans\ntwo lines",1\n\nLast, but quoted",0\n'
    with pytest.raises(SchemaError, match="CSV line 6"):
        parse_csv_bytes(content.encode(), "f.csv")
    frame = parse_csv_bytes(b'title,n\n\n"Spans\ntwo lines",1\n\n,2\n', "f.csv")
    assert [csv_line(frame, i) for i in range(len(frame))] == [3, 6]
    with pytest.raises(SchemaError, match=r"empty title \(CSV line\(s\) 6\)"):
        require_titles(frame, "f.csv")


@pytest.mark.parametrize(
    "content",
    [
        b"title,n\r\nA,1\r\nB,2\r\n",  # Windows
        b"title,n\rA,1\rB,2\r",  # old Mac
        b"\xef\xbb\xbftitle,n\nA,1\nB,2",  # BOM, no final newline
        b"title,n\n\nA,1\n\nB,2\n\n",  # blank lines
    ],
)
def test_line_endings_bom_and_blank_lines(content):
    frame = parse_csv_bytes(content, "f.csv")
    assert frame.to_dict("list") == {"title": ["A", "B"], "n": ["1", "2"]}


def test_empty_values_are_nan_and_text_is_kept_as_is():
    frame = parse_csv_bytes(b'a,title,c\n,"  spaced  ",007\n', "f.csv")
    assert pd.isna(frame.loc[0, "a"]) and frame.loc[0, "title"] == "  spaced  " and frame.loc[0, "c"] == "007"
    assert parse_csv_bytes(b",title\n1,x\n", "f.csv").columns.tolist() == ["Unnamed: 0", "title"]


@pytest.mark.parametrize(
    "name",
    [
        "fakenewsnet_titles.csv",
        "isot_titles.csv",
        "WELFake_Dataset_sample_1000.csv",
        "constraint_covid19.csv",
        "traffic_news_2021_2022.csv",
    ],
)
def test_real_files_read_exactly_as_pandas_reads_them(datasets_dir, name):
    data = (datasets_dir / name).read_bytes()
    expected = pd.read_csv(io.StringIO(data.decode("utf-8-sig")), dtype=str, keep_default_na=False, na_values=[""])
    assert parse_csv_bytes(data, name).equals(expected)


@pytest.mark.parametrize(
    "columns, renamed",
    [
        (["title", "label"], ["title", "label_input", "prob_fake", "label"]),
        (
            ["title", "prob_fake", "prob_fake_input"],
            ["title", "prob_fake_input_2", "prob_fake_input", "prob_fake", "label"],
        ),
        (["label_input", "label"], ["label_input", "label_input_2", "prob_fake", "label"]),
    ],
)
def test_outputs_never_overwrite_or_duplicate_input_columns(columns, renamed):
    frame = pd.DataFrame([[f"v{i}" for i in range(len(columns))]], columns=columns)
    out = with_outputs(frame, {"prob_fake": [0.5], "label": [1]})
    assert out.columns.tolist() == renamed
    for original, new in zip(columns, renamed):
        assert out[new].tolist() == frame[original].tolist()


# --- fakenews predict --input -------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ONE_COLUMN_LINES[:5])
def test_cli_predict_keeps_every_title_whole(tiny_bundle, tmp_path, line, capsys):
    source = tmp_path / "in.csv"
    source.write_text(f"title\n{line}\nAnother headline\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(source), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [row["title"] for row in rows] == [line, "Another headline"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("title,source\nTrump, Clinton meet,wire\n", "CSV line 2 has 3 fields"),
        ("id,title\n1,Fine\n2,Comma, inside\n", "CSV line 3 has 3 fields"),
        ("title,source\nNo source\n", "CSV line 2 has 1 field"),
    ],
)
def test_cli_predict_refuses_rows_that_do_not_fit(tiny_bundle, tmp_path, content, fragment, capsys):
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(content)
    code = main(["predict", "--model", str(tiny_bundle), "--input", str(source), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.count("\n") == 1
    assert not out.exists()


# --- fakenews feedback import -------------------------------------------------------------------------------


@pytest.fixture
def log_url(tmp_path):
    return f"sqlite:///{tmp_path / 'predictions.sqlite'}"


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("title,label\nTrump, Clinton meet,1\n", "CSV line 2 has 3 fields"),
        ("title,label\nFine headline,0\nShocking, really shocking,1\n", "CSV line 3 has 3 fields"),
        ("title,label\nNo label here\n", "CSV line 2 has 1 field"),
    ],
)
def test_feedback_import_refuses_rows_that_do_not_fit(tmp_path, log_url, content, fragment, capsys):
    source = tmp_path / "labels.csv"
    source.write_text(content)
    code = main(["feedback", "import", str(source), "--log-url", log_url])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.count("\n") == 1
    with PredictionLog(log_url) as log:
        assert log.feedback_count() == 0


def test_feedback_import_stores_quoted_titles_exactly(tmp_path, log_url, capsys):
    titles = ["Trump, Clinton meet in Ohio", 'He said "no", twice', "Plain headline"]
    source = tmp_path / "labels.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "label"])
        writer.writerows([[title, i % 2] for i, title in enumerate(titles)])
    assert main(["feedback", "import", str(source), "--log-url", log_url]) == 0
    with PredictionLog(log_url) as log:
        assert log.feedback_table()["title"].tolist() == titles


@pytest.mark.parametrize("title", ["🔥🔥🔥", "\u200b\u200b", "...", "a\x00b"])
def test_cli_predict_names_the_line_of_a_title_that_is_no_headline(tiny_bundle, tmp_path, title, capsys):
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows([["title"], ["A fine headline"], ['A "multi\nline" headline'], [title]])
    code = main(["predict", "--model", str(tiny_bundle), "--input", str(source), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "the title on CSV line 5" in err  # line 3 spans two
    assert not out.exists()
