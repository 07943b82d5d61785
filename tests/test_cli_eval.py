"""`promptlab eval` reports its cache use; `promptlab cache info | clear` show and empty the project's cache;
`promptlab report` on a failing notebook names the cell and exits 2."""

from __future__ import annotations

import re

import nbformat
import pytest

from promptlab.cli import main, parse_age
from promptlab.testing import FakeLLMServer, last_user_text

CASES = 4
SUITE = "name: cli\nlabels: [positive, negative]\ncases:\n" + "".join(
    f"  - id: c{i}\n    input: review {i}\n    expected: {'positive' if i % 2 == 0 else 'negative'}\n"
    for i in range(CASES))
PROMPT = """name: cli_prompt
version: 1.0.0
model: openai:m-1
max_tokens: 5
system: Classify.
template: "{{ input }}"
"""


def answer(body: dict) -> str:
    return "positive" if int(last_user_text(body).split()[-1]) % 2 == 0 else "negative"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with a suite and a prompt, and a fake OpenAI-compatible server behind the env."""
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    monkeypatch.chdir(tmp_path)
    with FakeLLMServer(answers=answer) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli")
        yield server


def evaluate(*extra: str) -> int:
    return main(["eval", "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--quiet", *extra])


def test_eval_prints_cache_hits_and_misses(project, capsys, tmp_path):
    assert evaluate() == 0
    path = tmp_path / "cache" / "responses.sqlite"  # conftest points PROMPTLAB_CACHE_DIR at tmp_path/cache
    assert f"cache: 0 hits · {CASES} misses ({path})" in capsys.readouterr().out
    assert evaluate() == 0
    assert f"cache: {CASES} hits · 0 misses ({path})" in capsys.readouterr().out
    assert evaluate("--no-cache") == 0
    assert "cache: off (--no-cache)" in capsys.readouterr().out
    assert project.request_count == 2 * CASES


def test_the_html_report_shows_cache_hits_and_misses(project, tmp_path):
    assert evaluate("--report", "first.html") == 0
    assert evaluate("--report", "second.html") == 0
    assert f"cache 0 hits · {CASES} misses" in (tmp_path / "first.html").read_text()
    assert f"cache {CASES} hits · 0 misses" in (tmp_path / "second.html").read_text()


def test_cache_info_and_clear(project, capsys, tmp_path):
    assert main(["cache", "info"]) == 0
    assert "empty: no run has written to it yet" in capsys.readouterr().out
    assert evaluate() == 0
    capsys.readouterr()
    assert main(["cache", "info"]) == 0
    info = capsys.readouterr().out
    assert str(tmp_path / "cache" / "responses.sqlite") in info and f"entries: {CASES} ·" in info
    assert re.search(rf"openai\s+openai:m-1\s+{re.escape(project.openai_base_url)}\s+{CASES}", info), info

    assert main(["cache", "clear", "--model", "openai:other"]) == 0
    assert f"cleared 0 of {CASES} entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--older-than", "1d"]) == 0
    assert f"cleared 0 of {CASES} entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--model", "openai:m-1"]) == 0
    assert f"cleared {CASES} of {CASES} entries" in capsys.readouterr().out


def test_cache_clear_refuses_an_unreadable_age(capsys):
    assert main(["cache", "clear", "--older-than", "soon"]) == 2
    assert "'soon'" in capsys.readouterr().err


def test_ages_read_as_durations():
    assert parse_age("30d").days == 30 and parse_age("12h").total_seconds() == 12 * 3600
    assert parse_age("1.5w").days == 10


def test_report_on_a_failing_notebook_names_the_cell_and_exits_2(tmp_path, capsys):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Fails"),
                      nbformat.v4.new_code_cell("N = 3", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell("total = N\nratio = total / (N - 4)")]
    path = tmp_path / "fails.ipynb"
    nbformat.write(notebook, path)
    # -p N=4 injects a cell after the parameters cell; the failing cell keeps its number in the file (3)
    assert main(["report", str(path), "-o", str(tmp_path / "out.html"), "-p", "N=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"promptlab report: notebook {str(path)!r} failed at cell 3 ('total = N'): "
                   "ZeroDivisionError: division by zero")
    assert not (tmp_path / "out.html").exists()


_FIRST_REQUEST = """
import json, os, sys
from promptlab.providers import _openai

async def first_call(self, request, **options):  # the moment the first request would leave: what is loaded?
    heavy = ("pandas", "pyarrow", "numpy", "scipy", "plotly", "matplotlib")
    print(json.dumps({"sdk": "openai" in sys.modules, "heavy": [m for m in heavy if m in sys.modules]}))
    sys.stdout.flush()
    os._exit(0)

_openai.SDKProvider.complete = first_call
from promptlab.cli import main
main(["eval", "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--prompt", "prompt.yaml", "--quiet"])
"""


def test_eval_reaches_its_first_request_without_pandas_scipy_or_plots(tmp_path):
    """Start to first request of `promptlab eval` pays for the SDK, not for the analysis stack (issue 13)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-cli", "PROMPTLAB_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _FIRST_REQUEST], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"sdk": True, "heavy": []}


# ---- the flags users expect (issue 14) ---------------------------------------------------------------------------
from pathlib import Path  # noqa: E402

from promptlab.cli import build_parser, cmd_eval  # noqa: E402
from promptlab.cli._eval import parse_params  # noqa: E402
from promptlab.errors import ArgumentError  # noqa: E402
from promptlab.providers import FakeProvider  # noqa: E402


class Counting(FakeProvider):
    """A FakeProvider that records how many calls were in flight at once."""

    def __init__(self, script, latency_s=0.01):
        super().__init__(script, latency_s=latency_s)
        self.in_flight = self.peak = 0

    async def complete(self, request):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().complete(request)
        finally:
            self.in_flight -= 1


def right(request) -> str:
    return "positive" if int(request.messages[-1].content.split()[-1]) % 2 == 0 else "negative"


def run_with(provider, *argv: str) -> int:
    return cmd_eval(build_parser().parse_args(["eval", "--quiet", "--no-cache", *argv]),
                    providers={"openai": provider})


def test_concurrency_bounds_the_calls_in_flight(tmp_path, monkeypatch):
    (tmp_path / "suite.yaml").write_text(SUITE.replace("cases:\n", "cases:\n" + "".join(
        f"  - id: x{i}\n    input: review {i}\n    expected: {'positive' if i % 2 == 0 else 'negative'}\n"
        for i in range(10, 30))))
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    monkeypatch.chdir(tmp_path)
    for flags, peak in ((["--concurrency", "3"], 3), (["--concurrency", "1"], 1), ([], CASES + 20)):
        provider = Counting(right)
        assert run_with(provider, "--suite", "suite.yaml", "--prompt", "prompt.yaml", *flags) == 0
        assert (provider.peak, len(provider.calls)) == (peak, CASES + 20)  # no flag: FakeProvider's own 64


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_concurrency_must_be_a_positive_whole_number(value, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["eval", "--suite", "s.yaml", "--prompt", "p.yaml", "--concurrency", value])
    assert stopped.value.code == 2 and f"must be a whole number >= 1, got {value!r}" in capsys.readouterr().err


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_base_url_sends_every_call_to_that_server(tmp_path, monkeypatch, capsys, wire):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)  # a loopback server needs no key; nothing may come from the env
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT.replace("openai:m-1", f"{wire}:m-1"))
    monkeypatch.chdir(tmp_path)
    with FakeLLMServer(answers=answer) as server:
        url = server.openai_base_url if wire == "openai" else server.anthropic_base_url
        assert main(["eval", "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--quiet", "--base-url", url,
                     "--min-accuracy", "1", "--json", "out.json"]) == 0
        paths = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
        assert server.counts_by_path == {paths[wire]: CASES}
    import json

    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["summary"]["rows"][0]["accuracy"] == 1.0 and doc["summary"]["rows"][0]["model"] == f"{wire}:m-1"


def test_base_url_refuses_a_run_with_no_hosted_provider(tmp_path, monkeypatch, capsys):
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT.replace("openai:m-1", "local:gemma-3-270m"))
    monkeypatch.chdir(tmp_path)
    argv = ["eval", "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--base-url", "http://127.0.0.1:9/v1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "['local:gemma-3-270m']" in err and "--model openai:<name>" in err


def test_params_read_yaml_scalars_and_commas_make_a_grid():
    assert parse_params(["temperature=0,0.4,0.8", "max_tokens=64", "stop=###"]) == {
        "temperature": [0, 0.4, 0.8], "max_tokens": 64, "stop": "###"}
    assert parse_params([" temperature = 0.5"]) == {"temperature": 0.5}
    assert parse_params(["stop=Answer:", 'x="\\n"', "y=true", "z=[a b]"]) == {"stop": "Answer:", "x": "\n", "y": True,
                                                                            "z": "[a b]"}
    assert parse_params([]) == {}


@pytest.mark.parametrize(("pairs", "says"), [
    (["temperature"], "must look like KEY=VALUE"), (["=0.4"], "must look like KEY=VALUE"),
    (["temperature="], "a value is empty"), (["temperature=0,,1"], "a value is empty"),
    (["temperature=0", "temperature=1"], "given twice"),
])
def test_bad_params_are_usage_errors(pairs, says):
    with pytest.raises(ArgumentError, match=re.escape(says)):
        parse_params(pairs)


def test_a_bad_param_fails_before_any_call(project, capsys):
    assert evaluate("--param", "temperature") == 2
    assert "--param must look like KEY=VALUE" in capsys.readouterr().err
    assert project.request_count == 0


def test_a_temperature_grid_runs_each_value_as_a_variant(tmp_path, monkeypatch):
    """Needs `run(params=...)` (branch h14-evalfile)."""
    import json

    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    monkeypatch.chdir(tmp_path)
    provider = FakeProvider(right)
    assert run_with(provider, "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--param", "temperature=0,0.7",
                    "--param", "max_tokens=3", "--json", "out.json") == 0
    assert sorted(r.temperature for r in provider.calls) == [0] * CASES + [0.7] * CASES
    assert {r.max_tokens for r in provider.calls} == {3}
    doc = json.loads(Path("out.json").read_text())
    import jsonschema

    from promptlab.cli._output import SCHEMA_PATH

    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(doc)
    variants = [row["variant"] for row in doc["summary"]["rows"]]
    assert variants == ["A[temperature=0]", "A[temperature=0.7]"]
    assert doc["comparison"]["rows"][0]["baseline"] == "A[temperature=0]"


def test_an_unknown_param_lists_the_allowed_ones(project, capsys):
    """Needs `run(params=...)` (branch h14-evalfile): the runner names the keys it takes."""
    assert evaluate("--param", "temprature=0.2") == 2
    err = capsys.readouterr().err
    assert "temprature" in err and "temperature" in err and "max_tokens" in err


def test_suite_and_prompt_are_required_without_a_config(capsys):
    assert main(["eval", "--prompt", "p.yaml"]) == 2
    assert "--suite is required (or give an eval file with -c promptlab.yaml)" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert "--suite and --prompt are required" in capsys.readouterr().err


def test_a_config_refuses_the_flags_it_sets(capsys):
    assert main(["eval", "-c", "promptlab.yaml", "--suite", "s.yaml", "--model", "openai:x", "--input-col", "t"]) == 2
    err = capsys.readouterr().err
    assert "--suite, --model, --input-col cannot be combined with -c 'promptlab.yaml'" in err
    assert "--sample, --concurrency, --param, --base-url, --no-cache, --report" in err


def test_labels_flag_needs_labels(tmp_path, monkeypatch, capsys):
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "prompt.yaml").write_text(PROMPT)
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--suite", "suite.yaml", "--prompt", "prompt.yaml", "--labels", "positive,,negative"]) == 2
    assert "an empty label" in capsys.readouterr().err


# ---- suites from tables (needs `load_suite` column arguments: branch h14-tables) -------------------------------
TICKETS = ("\ufeffticket,subject,body,label,kind\r\n"
           't-1,Refund please,"I was charged twice,\r\nplease refund",billing,happy_path\r\n'
           "t-2,App crashes,Crash on start — ünïcode ☃,tech,edge_case\r\n"
           't-3,Invoice wrong,"refund the ""difference""",billing,happy_path\r\n'
           "t-4,Login broken,cannot log in,tech,adversarial\r\n")
TICKET_PROMPT = PROMPT.replace('template: "{{ input }}"', "template: {template}")


def routed(request) -> str:
    return "billing" if "refund" in request.messages[-1].content.lower() else "tech"


@pytest.fixture
def tickets(tmp_path, monkeypatch):
    (tmp_path / "tickets.csv").write_bytes(TICKETS.encode("utf-8"))
    (tmp_path / "one.yaml").write_text(TICKET_PROMPT.format(template='"{{ input }}"'))
    (tmp_path / "two.yaml").write_text(TICKET_PROMPT.format(template='"{{ subject }} / {{ body }}"'))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_csv_suite_with_column_flags(tickets):
    import promptlab as pl

    provider = FakeProvider(routed)
    assert run_with(provider, "--suite", "tickets.csv", "--prompt", "one.yaml", "--input-col", "body",
                    "--expected-col", "label", "--id-col", "ticket", "--category-col", "kind",
                    "--labels", "billing,tech", "--save", "out.parquet", "--min-accuracy", "1") == 0
    df = pl.Results.load("out.parquet").df
    assert list(df["case_id"]) == ["t-1", "t-2", "t-3", "t-4"]
    assert list(df["category"]) == ["happy_path", "edge_case", "happy_path", "adversarial"]
    assert list(df["expected"]) == ["billing", "tech", "billing", "tech"]
    assert "charged twice," in provider.calls[0].messages[-1].content and "ünïcode ☃" in df["input"][1]
    assert pl.Results.load("out.parquet").meta["suite"]["labels"] == ["billing", "tech"]


def test_several_input_columns_become_template_variables(tickets, capsys):
    provider = FakeProvider(routed)
    assert run_with(provider, "--suite", "tickets.csv", "--prompt", "two.yaml", "--input-col", "subject",
                    "--input-col", "body", "--expected-col", "label", "--id-col", "ticket") == 0
    assert provider.calls[3].messages[-1].content == "Login broken / cannot log in"
    err = capsys.readouterr().err  # the inferred label set is announced as a CLI line, with the flags to settle it
    assert "warning: tickets.csv: no labels were declared" in err and "billing, tech" in err
    assert "--labels a,b,c declares the label set; --no-labels turns it off" in err


def test_no_labels_compares_whole_answers(tickets, capsys):
    import promptlab as pl

    assert run_with(FakeProvider("Label: billing"), "--suite", "tickets.csv", "--prompt", "one.yaml", "--input-col",
                    "body", "--expected-col", "label", "--no-labels", "--save", "out.parquet") == 0
    results = pl.Results.load("out.parquet")
    assert results.meta["suite"]["labels"] is None and "warning" not in capsys.readouterr().err
    # without a label set the whole answer is compared: "Label: billing" is not "billing" (with one, it would be)
    assert results.df["passed"].sum() == 0
    assert run_with(FakeProvider("Label: billing"), "--suite", "tickets.csv", "--prompt", "one.yaml", "--input-col",
                    "body", "--expected-col", "label", "--labels", "billing,tech", "--save", "labelled.parquet") == 0
    assert list(pl.Results.load("labelled.parquet").df["passed"]) == [True, False, True, False]
    assert main(["eval", "--suite", "tickets.csv", "--prompt", "one.yaml", "--labels", "a,b", "--no-labels"]) == 2


def test_input_columns_may_name_their_variables(tickets):
    from promptlab.cli._eval import _input_columns

    assert _input_columns(["body"]) == "body" and _input_columns(["a", "b"]) == ["a", "b"]
    assert _input_columns(["subject", "body=Message Body"]) == {"subject": "subject", "body": "Message Body"}
    for bad in (["=x"], ["v="], ["v=a", "v=b"]):
        with pytest.raises(ArgumentError, match="VAR=COL with a variable named once"):
            _input_columns(bad)
    (tickets / "tickets.csv").write_text(TICKETS.replace("body,label", "Message Body,label"), encoding="utf-8")
    provider = FakeProvider(routed)
    assert run_with(provider, "--suite", "tickets.csv", "--prompt", "two.yaml", "--input-col", "subject",
                    "--input-col", "body=Message Body", "--expected-col", "label", "--labels", "billing,tech") == 0
    assert provider.calls[3].messages[-1].content == "Login broken / cannot log in"


def test_a_missing_column_names_the_columns_there_are(tickets, capsys):
    assert main(["eval", "--suite", "tickets.csv", "--prompt", "one.yaml", "--input-col", "bdy",
                 "--expected-col", "label"]) == 2
    err = capsys.readouterr().err
    assert "'bdy'" in err and "body" in err and "subject" in err


# ---- an eval file with -c (needs `load_eval`: branch h14-evalfile) ----------------------------------------------
EVAL_FILE = """description: the CLI runs an eval file
prompts:
  - {id: A, file: a.yaml}
  - {id: B, file: b.yaml}
suite: suite.yaml
thresholds: {accuracy: 0.9}
"""


def test_a_config_runs_with_flags_overriding_the_file(tmp_path, monkeypatch, capsys):
    import json

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    cases = "".join(f"  - id: c{i}\n    input: review {i}\n    expected: {'positive' if i % 2 == 0 else 'negative'}\n"
                    for i in range(20))
    (tmp_path / "suite.yaml").write_text(f"name: from_config\nlabels: [positive, negative]\ncases:\n{cases}")
    (tmp_path / "a.yaml").write_text(PROMPT.replace("system: Classify.", "system: Classify A."))
    (tmp_path / "b.yaml").write_text(PROMPT.replace("system: Classify.", "system: Classify B."))
    (tmp_path / "promptlab.yaml").write_text(EVAL_FILE)
    monkeypatch.chdir(tmp_path)

    def rule(body: dict) -> str:  # B answers "positive" to everything: right on half the cases
        return "positive" if "Classify B." in json.dumps(body) else answer(body)

    with FakeLLMServer(answers=rule) as server:
        code = main(["eval", "-c", "promptlab.yaml", "--sample", "10", "--base-url", server.openai_base_url,
                     "--quiet", "--json", "out.json", "--report", "report.html"])
        assert server.request_count == 20  # --sample 10 overrides the file's 20 cases, × 2 prompts
    assert code == 1  # B misses the file's accuracy threshold
    doc = json.loads((tmp_path / "out.json").read_text())
    gates = {gate["name"]: gate for gate in doc["gates"]}
    assert not gates["thresholds"]["passed"] and any("B" in failure for failure in gates["thresholds"]["failures"])
    rows = {row["variant"]: row for row in doc["summary"]["rows"]}
    assert rows["A"]["accuracy"] == 1.0 and rows["B"]["n"] == 10
    assert doc["comparison"]["baseline"] == "A" and (tmp_path / "report.html").exists()
    assert "gate failed:" in capsys.readouterr().err
    import jsonschema

    from promptlab.cli._output import SCHEMA_PATH

    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(doc)
    assert doc["runs"][0]["eval"]["thresholds"] == {"accuracy": 0.9} == gates["thresholds"]["threshold"]

    with FakeLLMServer(answers=answer) as server:  # both right now: the thresholds pass; --param overrides the file
        assert main(["eval", "-c", "promptlab.yaml", "--sample", "4", "--param", "temperature=0.3", "--base-url",
                     server.openai_base_url, "--quiet", "--no-cache"]) == 0
        assert {body["temperature"] for body in server.bodies()} == {0.3} and server.request_count == 8


def test_a_config_run_stopped_by_failed_calls_keeps_its_thresholds_and_report(tmp_path, monkeypatch):
    import json

    from promptlab.errors import ProviderError

    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "a.yaml").write_text(PROMPT)
    (tmp_path / "b.yaml").write_text(PROMPT.replace("system: Classify.", "system: Classify B."))
    (tmp_path / "promptlab.yaml").write_text(EVAL_FILE + "report: out/report.html\n")
    monkeypatch.chdir(tmp_path)
    down = FakeProvider(lambda request: ProviderError("down", error_type="server"))
    args = build_parser().parse_args(["eval", "-c", "promptlab.yaml", "--quiet", "--no-cache", "--json", "o.json"])
    assert cmd_eval(args, providers={"openai": down}) == 1
    gates = {gate["name"]: gate for gate in json.loads(Path("o.json").read_text())["gates"]}
    assert not gates["max_error_rate"]["passed"] and not gates["thresholds"]["passed"]
    assert (tmp_path / "out" / "report.html").exists()


def test_eval_prints_the_run_id_it_recorded(project, capsys):
    import re

    import promptlab as pl

    assert evaluate() == 0
    printed = re.search(r"^run: (\S+) \(promptlab runs show ID", capsys.readouterr().out, re.MULTILINE)
    assert printed is not None
    recorded = pl.load_run(printed[1])  # the id printed is the run the store kept
    assert recorded.meta["run_id"] == printed[1] and len(recorded) == CASES
