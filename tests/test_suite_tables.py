"""Suites from tables (issue 14, item 1): CSV, TSV, JSON, JSONL, Parquet and DataFrames load to the same cases as
the same data written as a YAML suite, and score the same; bad tables say which columns exist and how to fix."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import promptlab as pl

TABLES = Path(__file__).parent / "fixtures" / "tables"
EXPORT = TABLES / "support_tickets_export.tsv"
QUEUES = ["Account Access", "Billing Inquiries", "Cancellation Requests", "Feature Requests", "General Feedback",
          "Refund Requests", "Shipping and Delivery", "Technical Support"]
EXPORT_COLUMNS = dict(input={"subject": "Subject", "body": "Message Body"}, expected="Assigned Queue",
                      id="Ticket ID", tags="Tags")
TICKET_PROMPT = pl.Prompt(name="queue", version="1", model="claude-3-5-sonnet-20241022", system="Route the ticket.",
                          template="Subject: {{ subject }}\nMessage: {{ body }}")
REVIEW_PROMPT = pl.Prompt(name="review", version="1", model="claude-3-5-sonnet-20241022", system="Sentiment.",
                          template="Product: {{ product }} ({{ language }})\nReview: {{ review }}")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def quiet_load(path, **kwargs) -> pl.Suite:
    """load_suite with the label inference warning silenced (tests of it catch it themselves)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pl.load_suite(path, **kwargs)


def canonical(label: str) -> str:
    """The test's own reading of a label (independent of LabelSet): words, case-folded."""
    return " ".join(label.replace("-", " ").replace("_", " ").casefold().split())


# ---- a real export: 68 tickets, BOM, CRLF, quoted tabs and line breaks, mixed-case labels ----------------------
def test_the_tsv_export_loads_to_the_cases_of_the_same_data_in_yaml():
    with pytest.warns(UserWarning) as caught:
        table = pl.load_suite(EXPORT, **EXPORT_COLUMNS)
    yaml_suite = pl.load_suite(TABLES / "support_tickets_export.yaml")
    assert len(table) == 68 and table.cases == yaml_suite.cases
    assert table.name == yaml_suite.name == "support_tickets_export"
    assert table.labels == tuple(QUEUES) == yaml_suite.labels  # inferred, one spelling per label, sorted
    message = str(caught[0].message)
    assert "8 distinct answers of column 'Assigned Queue'" in message and "'BILLING INQUIRIES' as 'Billing Inquiries'" \
        in message and "labels=[...]" in message and "labels=False" in message
    assert caught[0].filename == __file__  # the warning points at the caller's line, not into promptlab


def test_the_export_keeps_what_a_spreadsheet_shows():
    suite = pl.load_suite(EXPORT, **EXPORT_COLUMNS, labels=QUEUES)
    first = suite["TCK-10231"]
    assert first.input["body"] == ("Hi,\nI see two charges of $29.99 on my card for the March plan. Can you tell me "
                                   "what the second one is for?\nThanks, Dana")  # a quoted CRLF field reads as LF
    assert suite["TCK-10254"].input["body"] == "The product is okay. Nothing special.\tNot bad either."
    assert suite["TCK-10246"].input == {"subject": "NA", "body": "None"}  # text, not missing
    assert suite["TCK-10298"].input["subject"] == '"Urgent" order status'
    assert suite["TCK-10234"].input["subject"] == "Where is order 007?"
    assert suite["TCK-10232"].tags == ("ios", "crash") and suite["TCK-10233"].tags == ()
    assert suite["TCK-10297"].expected == "ACCOUNT ACCESS"  # kept as written; read as the label 'Account Access'
    assert suite["TCK-10231"].metadata == {"Created At": "2024-03-02 08:14", "Channel": "email", "Priority": "High"}


def ticket_answer(request: pl.providers.Request) -> str:
    """A keyword router that answers in several formats and gets some tickets wrong."""
    text = request.messages[-1].content.casefold()
    return next(answer for words, answer in TICKET_RULES if any(word in text for word in words))


TICKET_RULES = [
    (("refund", "money back"), "Refund Requests"),
    (("cancel", "delete my account", "end my membership"), "cancellation requests."),
    (("charge", "invoice", "billed", "receipt", "payment", "coupon", "tax"), "Answer: Billing Inquiries"),
    (("password", "log in", "login", "locked", "two-factor"), "ACCOUNT_ACCESS"),
    (("order", "delivery", "tracking", "ship"), "Shipping and Delivery"),
    (("add", "would be great", "would be really useful"), "Feature-Requests"),
    (("crash", "error", "bug", "won't", "not working", "freezes"), "technical support"),
    (("",), "General Feedback"),
]


def test_the_tsv_scores_like_the_yaml_suite_with_a_fake_model():
    table = pl.load_suite(EXPORT, **EXPORT_COLUMNS, labels=QUEUES)
    yaml_suite = pl.load_suite(TABLES / "support_tickets_export.yaml")
    runs = [pl.run(suite, TICKET_PROMPT, pl.FakeProvider(ticket_answer), progress=False, cache=False).df
            .set_index("case_id").sort_index() for suite in (table, yaml_suite)]
    columns = ["input", "expected", "output", "passed", "reason"]
    pd.testing.assert_frame_equal(runs[0][columns], runs[1][columns])
    # the accuracy, against scikit-learn on the test's own reading of the labels:
    # sklearn.metrics.accuracy_score(y_true, y_pred)
    from sklearn.metrics import accuracy_score

    y_true = [canonical(case.expected) for case in yaml_suite]
    y_pred = [canonical(ticket_answer(TICKET_PROMPT.render(case.input)).removeprefix("Answer: ").rstrip("."))
              for case in yaml_suite]
    expected_accuracy = accuracy_score(y_true, y_pred)
    assert 0.5 < expected_accuracy < 1  # the router is wrong on some tickets: the check can fail
    for df in runs:
        assert df["passed"].mean() == pytest.approx(expected_accuracy)
        assert df["error_type"].isna().all()


# ---- promptfoo's CSV: variables in columns, `__expected`, `__description` ------------------------------------------
def review_answer(request: pl.providers.Request) -> str:
    text = request.messages[-1].content.casefold()
    if "but" in text or "though" in text:
        return "Mixed"
    if any(word in text for word in ("love", "great", "excellent", "good", "cómodas", "works")):
        return "positive"
    if any(word in text for word in ("cracked", "dies", "stopped", "never")):
        return "Negative."
    return "neutral"


def test_a_promptfoo_csv_loads_its_columns_as_template_variables():
    with pytest.warns(UserWarning, match="4 distinct answers of column '__expected'"):
        table = pl.load_suite(TABLES / "reviews_promptfoo.csv")
    yaml_suite = pl.load_suite(TABLES / "reviews_promptfoo.yaml")
    assert table.cases == yaml_suite.cases and table.labels == ("mixed", "negative", "neutral", "positive")
    first = table.cases[0]
    assert first.input == {"product": "Blender X2", "review": "Love it. Crushes ice in seconds, and it's quiet.",
                           "language": "en"}
    assert first.metadata == {"__description": "clear praise"}
    # the id is row-<first 10 hex of sha256 of the input's canonical JSON> (hashlib, written out here)
    digest = hashlib.sha256(json.dumps(first.input, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                            .encode("utf-8")).hexdigest()
    assert first.id == f"row-{digest[:10]}"
    assert table.cases[12].input["review"] == "NA" and table.cases[12].expected == "neutral"


def test_the_promptfoo_csv_scores_like_the_yaml_suite():
    table = quiet_load(TABLES / "reviews_promptfoo.csv")
    yaml_suite = pl.load_suite(TABLES / "reviews_promptfoo.yaml")
    runs = [pl.run(suite, REVIEW_PROMPT, pl.FakeProvider(review_answer), progress=False, cache=False).df
            .set_index("case_id").sort_index() for suite in (table, yaml_suite)]
    pd.testing.assert_frame_equal(runs[0][["output", "passed", "reason"]], runs[1][["output", "passed", "reason"]])
    # sklearn.metrics.accuracy_score(y_true, y_pred) on the test's own reading of the answers
    from sklearn.metrics import accuracy_score

    y_pred = [canonical(review_answer(REVIEW_PROMPT.render(case.input)).rstrip(".")) for case in yaml_suite]
    expected_accuracy = accuracy_score([case.expected for case in yaml_suite], y_pred)
    assert 0 < expected_accuracy < 1
    assert runs[0]["passed"].mean() == pytest.approx(expected_accuracy)


def test_promptfoo_assertions_in_expected_are_flagged(tmp_path):
    path = write(tmp_path, "t.csv", 'question,__expected\n"Capital of France?","contains: Paris"\n2+2?,4\n')
    with pytest.warns(UserWarning, match=r"1 value\(s\) of `__expected` look like promptfoo assertions: row 2 "
                                         r"\('contains: Paris'\).*promptlab import promptfoo"):
        suite = pl.load_suite(path, input="question", labels=False)
    assert [case.expected for case in suite] == ["contains: Paris", "4"]


# ---- every format reads the same cases --------------------------------------------------------------------------
ROWS = [{"id": "a", "text": "I love it", "label": "positive", "difficulty": "Easy", "tags": "short,praise"},
        {"id": "b", "text": "NA", "label": "NA", "difficulty": "", "tags": ""},
        {"id": "c", "text": "It broke; refund, please", "label": "negative", "difficulty": "hard", "tags": "refund"},
        {"id": "d", "text": "007", "label": "None", "difficulty": "", "tags": "x|y"}]
MAPPING = dict(input="text", expected="label", labels=["positive", "negative", "NA", "None"])


def write_all(tmp_path: Path) -> dict[str, Path]:
    frame = pd.DataFrame(ROWS)
    paths = {suffix: tmp_path / f"cases{suffix}" for suffix in (".csv", ".tsv", ".json", ".jsonl", ".parquet")}
    frame.to_csv(paths[".csv"], index=False)
    frame.to_csv(paths[".tsv"], index=False, sep="\t")
    paths[".json"].write_text(json.dumps(ROWS), encoding="utf-8")
    paths[".jsonl"].write_text("\n".join(json.dumps(row) for row in ROWS) + "\n", encoding="utf-8")
    frame.to_parquet(paths[".parquet"])
    return paths


def test_every_table_format_reads_the_same_cases(tmp_path):
    paths = write_all(tmp_path)
    suites = {suffix: pl.load_suite(path, **MAPPING) for suffix, path in paths.items()}
    suites["frame"] = pl.Suite.from_frame(pd.DataFrame(ROWS), **MAPPING)
    reference = suites.pop(".csv")
    assert [case.input for case in reference] == ["I love it", "NA", "It broke; refund, please", "007"]
    assert [case.expected for case in reference] == ["positive", "NA", "negative", "None"]
    assert [case.difficulty for case in reference] == ["easy", None, "hard", None]
    assert [case.tags for case in reference] == [("short", "praise"), (), ("refund",), ("x", "y")]
    for suffix, suite in suites.items():
        assert suite.cases == reference.cases, suffix
    assert reference.name == "cases" and suites["frame"].name == "frame"


def test_text_that_looks_like_missing_or_numbers_stays_text(tmp_path):
    path = write(tmp_path, "t.csv", "input,expected\nNA,NA\nnull,null\nNone,None\n007,007\nN/A,#N/A\n-,nan\n")
    suite = pl.load_suite(path, labels=False)
    assert [(case.input, case.expected) for case in suite] == [
        ("NA", "NA"), ("null", "null"), ("None", "None"), ("007", "007"), ("N/A", "#N/A"), ("-", "nan")]


def test_parquet_and_frames_keep_the_types_they_declare(tmp_path):
    frame = pd.DataFrame({"input": ["a", "b"], "expected": [7, 42], "id": [1, 2]})
    frame.to_parquet(tmp_path / "n.parquet")
    for suite in (pl.load_suite(tmp_path / "n.parquet"), pl.Suite.from_frame(frame)):
        assert [case.expected for case in suite] == [7, 42] and [case.id for case in suite] == ["1", "2"]
        assert type(suite.cases[0].expected) is int and suite.labels is None  # numbers are not inferred as labels


def test_a_suite_round_trips_through_its_frame():
    suite = pl.Suite("demo", labels=["positive", "negative"])
    suite.add_case("I love it", "positive", difficulty="easy", tags=["short"])
    suite.add_edge_case({"subject": "Refund", "body": "It broke"}, "negative")
    again = pl.Suite.from_frame(suite.to_frame(), labels=["positive", "negative"], name="demo")
    assert again.cases == suite.cases and again.labels == suite.labels


# ---- ugly files -------------------------------------------------------------------------------------------------
def spreadsheet_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    """The rows a spreadsheet shows (Python's csv module: a blank line is an empty row)."""
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def test_bom_crlf_blank_rows_and_multiline_fields_and_rows_numbered_as_a_spreadsheet(tmp_path):
    text = ('\ufeffid,input,expected\r\n\r\na,"two\r\nlines",positive\r\n,,\r\nb,"say ""hi""",positve\r\n'
            'c,fine,neutral\r\n\r\n')
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(pl.SuiteFileError) as info:
        pl.load_suite(path, labels=["positive", "neutral"])
    bad_row = next(i for i, row in enumerate(spreadsheet_rows(text.removeprefix("\ufeff")), start=1)
                   if row[:1] == ["b"])
    assert bad_row == 5  # header 1, blank 2, a (two lines) 3, empty fields 4, b 5
    message = str(info.value)
    assert f"t.csv: row {bad_row}: case 'b' expects 'positve'" in message and "Did you mean 'positive'?" in message
    assert "the header is row 1" in message
    suite = pl.load_suite(path, labels=False)
    assert [case.id for case in suite] == ["a", "b", "c"] and suite["a"].input == "two\nlines"
    assert suite["b"].input == 'say "hi"'


def test_semicolon_csv_is_read_by_its_header(tmp_path):
    semicolons = write(tmp_path, "eu.csv", "input;expected\n\"Gut, aber teuer\";mixed\nSuper;positive\n")
    assert [case.input for case in pl.load_suite(semicolons, labels=False)] == ["Gut, aber teuer", "Super"]
    commas = write(tmp_path, "us.csv", "input,expected\nfine; really,positive\n")
    assert pl.load_suite(commas, labels=False).cases[0].input == "fine; really"


def test_every_problem_of_a_table_is_listed_with_its_row(tmp_path):
    path = write(tmp_path, "t.csv", "id,input,expected,difficulty\na,x,1,\na,y,2,\nb,,,\nc,z,3,extreme\nd,w,4,HARD\n")
    with pytest.raises(pl.SuiteFileError) as info:
        pl.load_suite(path, labels=False)
    message = str(info.value)
    assert "invalid suite table (3 problems)" in message
    assert "t.csv: row 3: duplicate case id 'a' (first at row 2)" in message
    assert "t.csv: row 4: case 'b' has no `expected`" in message
    assert "t.csv: row 5: case 'c': difficulty:" in message and "(got 'extreme')" in message
    assert "row 6" not in message  # "HARD" is hard


def test_ids_are_generated_stably_and_repeats_numbered(tmp_path):
    path = write(tmp_path, "t.csv", "input,expected\nhello,a\nbye,b\nhello,a\nhello,c\n")
    ids = [case.id for case in pl.load_suite(path, labels=False)]
    base = "row-" + hashlib.sha256(json.dumps("hello").encode()).hexdigest()[:10]
    assert ids[0] == base and ids[2] == f"{base}-2" and ids[3] == f"{base}-3"
    moved = write(tmp_path, "u.csv", "input,expected\nbye,b\nhello,a\n")
    assert [case.id for case in pl.load_suite(moved, labels=False)] == [ids[1], ids[0]]  # by input, not position


# ---- columns ----------------------------------------------------------------------------------------------------
def test_a_missing_column_names_the_columns_and_the_closest(tmp_path):
    path = write(tmp_path, "t.csv", "Ticket Text,Queue Label\nhi,a\n")
    with pytest.raises(pl.SuiteFileError) as info:
        pl.load_suite(path, input="ticket_txt", expected="Queue Lable")
    message = str(info.value)
    assert "input='ticket_txt': no column 'ticket_txt'. Did you mean 'Ticket Text'?" in message
    assert "expected='Queue Lable': no column 'Queue Lable'. Did you mean 'Queue Label'?" in message
    assert "Columns: 'Ticket Text', 'Queue Label'." in message
    # names match ignoring case, spaces and underscores when they name one column
    suite = pl.load_suite(path, input="ticket_text", expected="queue label", labels=False)
    assert suite.cases[0].input == "hi" and suite.cases[0].expected == "a"


def test_no_input_and_no_expected_column_are_reported_together(tmp_path):
    path = write(tmp_path, "t.csv", "text,label\nhi,a\n")
    with pytest.raises(pl.SuiteFileError) as info:
        pl.load_suite(path)
    message = str(info.value)
    assert "(2 problems)" in message and message.index("no `input` column") < message.index("no `expected`")
    assert "Did you mean 'text'?" in message and "Did you mean 'label'?" in message
    assert "input=['subject', 'body']" in message and "require_expected=False" in message
    assert len(pl.load_suite(path, input="text", require_expected=False, labels=False)) == 1


def test_duplicate_columns_are_refused_only_when_read(tmp_path):
    path = write(tmp_path, "t.csv", "input,expected,note,expected,note\nhi,a,x,b,y\n")
    with pytest.raises(pl.SuiteFileError, match=r"column 'expected' appears 2 times in the header \(columns 2 and "
                                                r"4\).*Rename one"):
        pl.load_suite(path)
    suite = pl.load_suite(path, expected=False, require_expected=False, labels=False)
    assert suite.cases[0].input == "hi" and suite.cases[0].metadata == {}  # the repeated `note` is left out


def test_template_variables_from_a_list_or_a_mapping(tmp_path):
    path = write(tmp_path, "t.csv", "subject,Message Body,expected\nRefund,It broke,refund\n")
    with pytest.raises(pl.SuiteFileError, match=r"'Message Body' cannot be a template variable.*"
                                                r"input=\{'message_body': 'Message Body'\}"):
        pl.load_suite(path, input=["subject", "Message Body"])
    suite = pl.load_suite(path, input={"subject": "subject", "body": "Message Body"}, labels=False)
    assert suite.cases[0].input == {"subject": "Refund", "body": "It broke"}
    with pytest.raises(pl.errors.ArgumentError, match="input= names the column"):
        pl.load_suite(path, input=3)


@pytest.mark.parametrize("text, problem", [
    ("", "is empty"),
    ("\n\n  \n", "is empty"),
    ("input,expected\n", r"has no rows: only its columns \('input', 'expected'\)"),
    ("input,expected\n\n,\n", "has no rows"),
    ("input,expected\na,b,c\n", "cannot be read as CSV: Error tokenizing data"),
    ('input,expected\n"open,b\n', "cannot be read as CSV"),
])
def test_empty_and_broken_files_are_refused(tmp_path, text, problem):
    with pytest.raises(pl.SuiteFileError, match=problem):
        pl.load_suite(write(tmp_path, "t.csv", text))


def test_files_that_are_not_tables_are_refused(tmp_path):
    with pytest.raises(pl.SuiteFileError, match="does not exist"):
        pl.load_suite(tmp_path / "missing.csv")
    with pytest.raises(pl.SuiteFileError, match="does not exist"):
        pl.load_suite(tmp_path / "missing.parquet")
    (tmp_path / "book.csv").write_bytes(b"PK\x03\x04 an xlsx saved as csv")
    with pytest.raises(pl.SuiteFileError, match="is a binary file .*Excel"):
        pl.load_suite(tmp_path / "book.csv")
    (tmp_path / "junk.parquet").write_text("input,expected\n")
    with pytest.raises(pl.SuiteFileError, match="cannot be read as Parquet"):
        pl.load_suite(tmp_path / "junk.parquet")
    with pytest.raises(pl.SuiteFileError, match=r"array of records.*got an object with keys 'cases'.*\.yaml"):
        pl.load_suite(write(tmp_path, "s.json", '{"cases": []}'))
    with pytest.raises(pl.SuiteFileError, match=r"is an Excel workbook.*pl\.Suite\.from_frame\(pd\.read_excel\("):
        pl.load_suite(tmp_path / "book.xlsx")


# ---- labels -----------------------------------------------------------------------------------------------------
def test_labels_declared_checked_or_turned_off(tmp_path):
    path = write(tmp_path, "t.csv", "input,expected\na,Positive\nb,negative\nc,Neutrl\n")
    with pytest.raises(pl.SuiteFileError, match=r"row 4: case '.*' expects 'Neutrl'.*Did you mean 'neutral'\?"):
        pl.load_suite(path, labels=["positive", "negative", "neutral"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no inference, no warning
        assert pl.load_suite(path, labels=False).labels is None
    with pytest.raises(pl.errors.ArgumentError, match="labels= is a list"):
        pl.load_suite(path, labels="positive,negative")


@pytest.mark.parametrize("values", [
    ["a", "b", "c"],                                      # nothing repeats: free answers, not labels
    [f"label {i}" for i in range(31)] * 2,                # more than 30
    ["Paris is the capital of France, since 987 at the latest, and has been for long"] * 2,  # long text
])
def test_labels_are_not_inferred_from_free_answers(tmp_path, values):
    frame = pd.DataFrame({"input": [f"q{i}" for i in range(len(values))], "expected": values})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pl.Suite.from_frame(frame).labels is None


def test_a_suite_file_takes_name_and_labels_but_not_columns(tmp_path):
    path = write(tmp_path, "s.jsonl", json.dumps({"id": "a", "input": "x", "expected": "Yes"}) + "\n")
    suite = pl.load_suite(path, labels=["yes", "no"], name="renamed")
    assert suite.labels == ("yes", "no") and suite.name == "renamed"
    with pytest.raises(pl.errors.ArgumentError, match=r"expected, input= map a table's columns.*s\.yaml"):
        pl.load_suite(tmp_path / "s.yaml", input="text", expected="label")


def test_jsonl_is_a_suite_file_unless_columns_are_named(tmp_path):
    path = write(tmp_path, "r.ndjson", '{"text": "hi", "label": "a"}\n\n{"text": "yo", "label": "b"}\n')
    with pytest.raises(pl.SuiteFileError, match=r"The lines look like records of a table \(keys 'text', 'label'\)"):
        pl.load_suite(path)
    suite = pl.load_suite(path, input="text", expected="label", labels=False)
    assert [case.input for case in suite] == ["hi", "yo"]
    broken = write(tmp_path, "b.jsonl", '{"text": "hi", "label": "a"}\n{"text": \n')
    with pytest.raises(pl.SuiteFileError, match=r"b\.jsonl:2: not valid JSON"):
        pl.load_suite(broken, input="text", expected="label")


def test_from_frame_names_rows_by_index_and_refuses_non_frames():
    frame = pd.DataFrame({"input": ["a", None], "expected": ["x", "y"]}, index=["r1", "r2"])
    with pytest.raises(pl.SuiteFileError, match=r"frame 'tickets': index 'r2': case '.*': input: required"):
        pl.Suite.from_frame(frame, name="tickets", labels=False)
    with pytest.raises(pl.errors.ArgumentError, match="needs a pandas DataFrame, got list"):
        pl.Suite.from_frame([{"input": "a"}])


def test_promptfoo_assertion_columns_are_not_offered_as_answers(tmp_path):
    path = write(tmp_path, "t.csv", "topic,__expected1,__description\nml,contains: algorithm,about ml\n")
    with pytest.raises(pl.SuiteFileError) as info:
        pl.load_suite(path)
    message = str(info.value)
    assert "promptfoo's '__expected1' hold assertions (scorers), not answers" in message
    assert "promptlab import promptfoo" in message and "Did you mean" not in message
    suite = pl.load_suite(path, require_expected=False)
    assert suite.cases[0].input == {"topic": "ml"}
    assert suite.cases[0].metadata == {"__expected1": "contains: algorithm", "__description": "about ml"}
