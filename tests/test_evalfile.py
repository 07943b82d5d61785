"""The eval file (issue 14, item 2): one YAML file describes a whole evaluation — prompts (files, inline text,
python callables), models with their own params, a params grid, the suite, scorers, a transform, thresholds —
validated like every other file, and run the same way from a notebook and the CLI."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import promptlab as pl
from promptlab.authoring._callable import CallablePrompt
from promptlab.errors import EvalFileError, RenderError
from promptlab.evaluation import EvalSpec, ModelConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of examples/, so tests may edit it."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "examples")) / "promptlab.yaml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def answer_by_team(request):
    """Answers the team the ticket's first word suggests, in prose, so the transform has work to do."""
    text = request.messages[-1].content.lower()
    team = "billing" if ("refund" in text or "invoice" in text) else "technical" if "export" in text else "account"
    return f"I think this is for {team}."


# ---- the worked example ---------------------------------------------------------------------------------------
def test_the_example_loads_every_kind_of_prompt(example):
    spec = pl.load_eval(example)
    assert isinstance(spec, EvalSpec) and list(spec.variants) == ["router", "inline", "built"]
    router, inline, built = spec.variants.values()
    assert router.ref == "router@1.0.0" and inline.template == "Ticket: {{ input }}\nTeam:"
    assert isinstance(built, CallablePrompt) and built.model == "local:gemma-3-270m"
    assert spec.models == [ModelConfig("local:gemma-3-270m", {"max_tokens": 8}, "gemma")]
    assert spec.suite.labels == ("billing", "technical", "account") and len(spec.suite) == 6
    assert spec.report == example.parent / "reports/routing.html" and spec.baseline == "router"


def test_the_example_runs_as_a_sweep_compares_and_checks(example, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # paths are the file's, not the working directory's
    spec = pl.load_eval(example)
    fake = pl.FakeProvider(answer_by_team)
    results = spec.run(providers={"local": fake}, progress=False, cache=False)
    df = results.df
    assert len(df) == 3 * 2 * 6 and set(df["model"]) == {"local:gemma-3-270m"}
    assert list(dict.fromkeys(df["variant"]))[:2] == ["router[temperature=0]", "router[temperature=0.8]"]
    assert {r.max_tokens for r in fake.calls} == {8} and {r.temperature for r in fake.calls} == {0, 0.8}
    assert df["output_raw"].str.startswith("I think this is for").all()
    assert set(df["output"]) == {"billing", "technical", "account"}
    # the fake is right on t01-t03 and t05-t06 and wrong on t04 ("Pages load slowly" reads as account)
    assert df.groupby("variant")["passed"].mean().eq(5 / 6).all()
    assert results.meta["eval"]["file"] == str(example) and results.meta["transform"].startswith("regex")
    # the python prompt built the request: its system turn and worked example
    built = [r for r in fake.calls if r.system == "Route the support ticket to one team: billing, technical, account."]
    assert len(built) == 12 and built[0].messages[0].content == "My card was charged twice."
    comparison = spec.compare(results)
    assert set(comparison.df["baseline"]) == {"router[temperature=0]"} and len(comparison.df) == 5
    assert spec.check(results) == []
    strict = spec.with_changes(thresholds={"accuracy": 0.9, "error_rate": 0.0})
    failures = strict.check(results)
    assert len(failures) == 6
    assert failures[0] == ("variant 'router[temperature=0]' on local:gemma-3-270m: accuracy 0.833 is below the "
                           "threshold 0.9 (passed / calls; failed calls count as failures).")


def test_run_arguments_override_the_file(example):
    spec = pl.load_eval(example)
    fake = pl.FakeProvider(answer_by_team)
    results = spec.run(providers={"local": fake}, progress=False, cache=False, sample=2,
                       params={"temperature": 0.3})
    assert len(results.df) == 3 * 2 and set(results.df["variant"]) == {"router", "inline", "built"}
    assert {r.temperature for r in fake.calls} == {0.3}


# ---- python prompts ---------------------------------------------------------------------------------------------
def test_a_python_prompts_hash_follows_its_source(tmp_path):
    module = write(tmp_path, "mine.py", "def build(v):\n    return 'Q: ' + v['input']\n")
    eval_file = write(tmp_path, "e.yaml", """\
        prompts: [{id: p, python: "mine:build", model: "local:gemma-3-270m"}]
        suite: s.yaml
        """)
    write(tmp_path, "s.yaml", "name: s\ncases: [{id: a, input: hi, expected: x}]\n")
    first = pl.load_eval(eval_file).variants["p"]
    assert first.render("hi").messages[-1].content == "Q: hi" and first.render("hi").system == ""
    module.write_text("def build(v):\n    return 'Question: ' + v['input']\n")
    second = pl.load_eval(eval_file).variants["p"]
    assert second.content_hash != first.content_hash and second.version == second.content_hash[:8]
    assert second.render({"input": "hi"}).messages[-1].content == "Question: hi"
    hotter = second.with_changes(temperature=0.5)
    assert hotter.version == second.version and hotter.content_hash != second.content_hash
    assert hotter.render("x").temperature == 0.5


def test_a_python_prompt_that_returns_junk_is_a_render_error_before_any_call():
    prompt = CallablePrompt("p", lambda v: [{"role": "user", "content": 5}], model="fake:x")
    with pytest.raises(RenderError, match="message 0 is"):
        prompt.render("x")
    ends_with_assistant = CallablePrompt("p", lambda v: [{"role": "user", "content": "a"},
                                                         {"role": "assistant", "content": "b"}], model="fake:x")
    with pytest.raises(RenderError, match="no final user turn"):
        ends_with_assistant.render("x")
    fake = pl.FakeProvider("x")
    raising = CallablePrompt("p", lambda v: v["missing"], model="fake:x")
    with pytest.raises(RenderError, match="raised KeyError"):
        pl.run(pl.Suite("s", [pl.Case(id="a", input="x", expected="y")]), raising, fake, progress=False)
    assert not fake.calls


# ---- validation: every problem, with its line ---------------------------------------------------------------------
BAD = """\
description: many problems
prompts:
  - prompts/missing.yaml
  - {id: inline, txt: "Classify {{ input }}"}
  - {id: raw, text: "Classify {{ input"}
models:
  - {id: local:gemma-3-270m, params: {temprature: 0.5}}
  - {id: local:gemma-3-270m, base_url: "http://localhost:1/v1"}
params: {temperature: 0.2}
suite: {path: s.yaml, requre_expected: false}
scorer: {type: contains, valeu: x}
transform: {regx: "x"}
baseline: routr
thresholds: {acuracy: 0.5, error_rate: 2}
"""


def test_every_problem_is_listed_with_its_line_and_a_did_you_mean(tmp_path):
    write(tmp_path, "s.yaml", "name: s\ncases: [{id: a, input: hi, expected: x}]\n")
    path = write(tmp_path, "promptlab.yaml", BAD)
    with pytest.raises(EvalFileError) as info:
        pl.load_eval(path)
    message = str(info.value)
    expected = [
        ":3: prompts.0: prompt file", "missing.yaml' does not exist",
        ":4: prompts.1.txt: unknown key", "Did you mean 'text'?",
        ":5: prompt 'raw': template:",
        ":7: models.0.params: model 'local:gemma-3-270m': unknown param(s) ['temprature']",
        ":8: models.1.base_url: base_url applies to openai and anthropic models",
        ":10: suite.requre_expected: unknown key. Did you mean 'require_expected'?",
        ":11: scorer: unknown key 'valeu' in a scorer. Did you mean 'value'?",
        ":12: transform:", "Did you mean 'regex'?",
        ":13: baseline: no prompt has the id 'routr'.",
        ":14: thresholds.acuracy: unknown threshold. Did you mean 'accuracy'?",
        ":14: thresholds.error_rate: a threshold is a share within [0, 1], got 2.0.",
    ]
    missing = [fragment for fragment in expected if fragment not in message]
    assert not missing, message


def test_a_misspelt_top_level_key_and_a_wrong_type_are_named(tmp_path):
    path = write(tmp_path, "e.yaml", "prompts: [p.yaml]\nsuite: s.yaml\nrepeat: 2\nconcurrency: many\n")
    with pytest.raises(EvalFileError) as info:
        pl.load_eval(path)
    assert "e.yaml:3: repeat: unknown key" in str(info.value) and "Did you mean 'repeats'?" in str(info.value)
    assert "e.yaml:4: concurrency: Input should be a valid integer" in str(info.value)


def test_an_inline_prompt_needs_a_model_from_somewhere(tmp_path):
    write(tmp_path, "s.yaml", "name: s\ncases: [{id: a, input: hi, expected: x}]\n")
    path = write(tmp_path, "e.yaml", "prompts: [{id: p, text: 'Say {{ input }}'}]\nsuite: s.yaml\n")
    with pytest.raises(EvalFileError, match=r"e.yaml:1: prompts.0: prompt 'p' names no model"):
        pl.load_eval(path)


def test_a_python_scorer_or_prompt_that_cannot_import_is_refused_at_load(tmp_path):
    write(tmp_path, "s.yaml", "name: s\ncases:\n  - {id: a, input: hi, scorer: {type: python, value: 'nope:f'}}\n")
    write(tmp_path, "mine.py", "def build(v):\n    return v['input']\n")
    path = write(tmp_path, "e.yaml", """\
        prompts: [{id: p, python: "mine:biuld", model: "local:gemma-3-270m"}]
        suite: s.yaml
        """)
    with pytest.raises(EvalFileError) as info:
        pl.load_eval(path)
    assert "e.yaml:1: prompts.0: prompt 'p': 'mine' has no 'biuld'" in str(info.value)
    assert "Did you mean 'build'?" in str(info.value)
    assert "e.yaml:2: suite: case 'a' names scorer" in str(info.value) and "cannot import module 'nope'" in str(
        info.value)


def test_an_ugly_file_with_a_bom_and_crlf_loads(tmp_path):
    write(tmp_path, "s.yaml", "name: s\ncases: [{id: a, input: héllo, expected: x}]\n")
    write(tmp_path, "p.yaml", "name: p\nversion: 1\nmodel: local:gemma-3-270m\n")
    path = tmp_path / "e.yaml"
    path.write_bytes("\ufeffprompts:\r\n  - p.yaml\r\nsuite: s.yaml\r\n\r\nscorer: [icontains]\r\n".encode())
    spec = pl.load_eval(path)
    assert list(spec.variants) == ["p"] and spec.models is None and spec.suite["a"].input == "héllo"


def test_one_model_twice_with_different_params_and_shared_endpoints(tmp_path):
    write(tmp_path, "s.yaml", "name: s\ncases: [{id: a, input: hi, expected: x}, {id: b, input: yo, expected: x}]\n")
    path = write(tmp_path, "e.yaml", """\
        prompts: [{id: p, text: "Say {{ input }}"}]
        models:
          - {id: "openai:gpt-4o-mini", label: cold, params: {temperature: 0}, base_url: "http://127.0.0.1:9/v1"}
          - {id: "openai:gpt-4o-mini", label: hot, params: {temperature: 1}}
        suite: s.yaml
        scorer: icontains
        """)
    spec = pl.load_eval(path)
    assert spec.base_urls == {"openai": "http://127.0.0.1:9/v1"}
    fake = pl.FakeProvider("x", model_name="gpt-4o-mini")
    results = spec.run(providers={"openai": fake}, progress=False, cache=False)
    assert set(results.df["model"]) == {"openai:gpt-4o-mini"}
    assert sorted(set(results.df["variant"])) == ["p[temperature=0]", "p[temperature=1]"]
    assert [m["label"] for m in results.meta["models"]] == ["cold", "hot"]
    conflict = path.read_text().replace("params: {temperature: 1}}", "params: {temperature: 1}, "
                                        "base_url: 'http://other/v1'}")
    path.write_text(conflict)
    with pytest.raises(EvalFileError, match="openai models are given two endpoints"):
        pl.load_eval(path)


def test_classification_thresholds_need_labels(tmp_path):
    write(tmp_path, "s.yaml", "name: s\ncases: [{id: a, input: hi, expected: x}]\n")
    write(tmp_path, "p.yaml", "name: p\nversion: 1\nmodel: local:gemma-3-270m\n")
    path = write(tmp_path, "e.yaml", "prompts: [p.yaml]\nsuite: s.yaml\nthresholds: {macro_f1: 0.5}\n")
    with pytest.raises(EvalFileError, match="macro_f1 reads answers against the suite's labels"):
        pl.load_eval(path)


# ---- the local model: a params sweep end to end (the "done when") --------------------------------------------
@pytest.mark.local_model
def test_a_params_sweep_runs_end_to_end_on_the_local_model(example):
    spec = pl.load_eval(example)
    spec = spec.with_changes(variants={"router": spec.variants["router"]}, suite=spec.suite.sample(4, seed=0))
    results = spec.run(progress=False, cache=False)
    df = results.df
    assert len(df) == 4 * 2 and set(df["model_served"]) == {"local:gemma-3-270m"}
    assert sorted(set(df["variant"])) == ["router[temperature=0.8]", "router[temperature=0]"]
    assert all(p == {"temperature": t, "max_tokens": 8} for p, t in
               zip(df["params"], [0] * 4 + [0.8] * 4, strict=True))
    answered = df["error_type"].isna() | df["error_type"].eq("transform_error")
    assert answered.all() and df["output_raw"].str.len().gt(0).all()
    assert (df.loc[df["error_type"].isna(), "output"].isin(["billing", "technical", "account"])).all()
    comparison = spec.compare(results)
    # paired by case: a case counts when both temperatures gave a verdict (an unreadable answer has none)
    verdicts = df.pivot(index="case_id", columns="variant", values="passed")
    both = int(verdicts.notna().all(axis=1).sum())
    assert list(comparison.df["variant"]) == ["router[temperature=0.8]"]
    assert (comparison.df["n"].iloc[0], comparison.df["n_dropped"].iloc[0]) == (both, 4 - both)


def test_classification_thresholds_read_macro_f1_and_kappa(tmp_path):
    if not hasattr(pl.Results, "classification"):
        pytest.skip("classification metrics arrive with branch h14-classify")
    from sklearn.metrics import cohen_kappa_score, f1_score

    write(tmp_path, "s.yaml", """\
        name: s
        labels: [billing, technical, account]
        cases:
          - {id: a, input: refund please, expected: billing}
          - {id: b, input: export broken, expected: technical}
          - {id: c, input: change my email, expected: account}
          - {id: d, input: invoice wrong, expected: billing}
        """)
    path = write(tmp_path, "e.yaml", """\
        prompts: [{id: p, text: "Route: {{ input }}", model: "fake:x"}]
        suite: s.yaml
        thresholds: {accuracy: 0.5, macro_f1: 0.9, kappa: 0.5}
        """)
    spec = pl.load_eval(path)
    results = spec.run(providers={"fake": pl.FakeProvider("billing")}, progress=False, cache=False)
    truth, said = ["billing", "technical", "account", "billing"], ["billing"] * 4
    macro = f1_score(truth, said, average="macro", labels=["billing", "technical", "account"], zero_division=0)
    kappa = cohen_kappa_score(truth, said)  # sklearn.metrics.cohen_kappa_score(y_true, y_pred) = 0
    assert spec.check(results) == [
        f"variant 'p' on fake:x: macro_f1 {macro:.3f} is below the threshold 0.9 (macro-F1 against the suite's "
        "labels).",
        f"variant 'p' on fake:x: kappa {kappa:.3f} is below the threshold 0.5 (Cohen's kappa against the suite's "
        "labels).",
    ]  # accuracy 0.5 meets its threshold of 0.5
