"""The promptfoo importer: configs written to promptfoo's documented schema (tests/fixtures/promptfoo/) become prompt
files, a suite with scorer specs and an eval file; what cannot be converted is reported, never dropped silently.

Fixtures: ``routing`` (two prompts x one model at four temperatures, a CSV exported from a spreadsheet with a BOM,
CRLF, a multi-line cell and a blank row, an output transform, derivedMetrics for F1), ``kitchen`` (every prompt,
provider, test and assertion spelling, and things promptlab must refuse), ``ugly`` (an old-style JSON config with
a BOM and CRLF, ``targets``, ``{path: label}`` prompts, CSV globs with a repeated column and ragged rows, a
``defaultTest`` file, scenarios), ``local`` (small, run on the local model), ``bad`` (configs that cannot import).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import promptlab as pl
from promptlab.errors import ArgumentError, PromptlabError
from promptlab.importers._promptfoo import import_promptfoo
from promptlab.importers._promptfoo_asserts import assertion_from_string, convert_transform
from promptlab.importers._promptfoo_read import Log, Source
from promptlab.importers._promptfoo_shims import MODULE, Shims

FIXTURES = Path(__file__).parent / "fixtures" / "promptfoo"
SECRETS = ("sk-proj-DO-NOT-COPY-0123456789abcdef", "sk-proj-ALSO-SECRET-abcdef0123456789")


def _import(name: str, tmp_path: Path, **kwargs):
    out = tmp_path / name
    report = import_promptfoo(FIXTURES / name, out, **kwargs)
    return report, out


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _suite(out: Path) -> dict:
    (path,) = (out / "suites").glob("*.yaml")
    return _yaml(path)


def _cases_by_source(out: Path) -> dict[str, dict]:
    return {case["metadata"]["promptfoo_source"]: case for case in _suite(out)["cases"]}


def _skipped(report) -> dict[str, str]:
    return dict(report.skipped)


def _adapters(out: Path):
    """The generated adapter module, loaded under a name of its own for this test."""
    spec = importlib.util.spec_from_file_location(f"{MODULE}_{abs(hash(str(out)))}", out / f"{MODULE}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the config: prompts x providers at four temperatures, CSV tests, transform, F1 -----------------------
def test_four_temperatures_of_one_model_become_a_params_grid(tmp_path):
    report, out = _import("routing", tmp_path)
    spec = _yaml(report.eval_file)
    assert report.eval_file == out / "promptlab.yaml" and report.written[0] == report.eval_file
    assert spec["models"] == [{"id": "openai:gpt-4o-mini", "params": {"max_tokens": 16}}]
    assert spec["params"] == {"temperature": [0, 0.4, 0.8, 1.2]}
    assert spec["prompts"] == [{"id": "router", "file": "prompts/router.yaml"},
                               {"id": "terse", "file": "prompts/terse.yaml"}]
    assert (spec["repeats"], spec["concurrency"], spec["scorer"]) == (2, 8, "exact")
    assert spec["suite"] == "suites/routing.yaml"
    assert any("'mini @ t=0.4'" in note and "temperature" in note for note in report.notes)


def test_prompt_files_load_and_keep_the_template(tmp_path):
    _, out = _import("routing", tmp_path)
    router = pl.load_prompt(out / "prompts" / "router.yaml")
    terse = pl.load_prompt(out / "prompts" / "terse.yaml")
    assert router.model == "openai:gpt-4o-mini" and router.variables == {"subject", "body"}
    source = (FIXTURES / "routing" / "prompts" / "router.txt").read_text(encoding="utf-8").strip()
    assert router.template == source  # the text file, as written
    assert terse.template.splitlines()[1] == "Subject: {{ subject }}"  # CRLF file: no stray \r
    assert router.render_user({"subject": "Hi", "body": "Refund?"}).endswith("Subject: Hi\nMessage: Refund?\nLabel:")


def test_csv_tests_are_read_as_pandas_reads_the_spreadsheet(tmp_path):
    _, out = _import("routing", tmp_path)
    suite = _suite(out)
    # the outside reading of the same file: BOM dropped, blank row skipped, quoted multi-line cell kept
    table = pd.read_csv(FIXTURES / "routing" / "tests.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(suite["cases"]) == len(table) == 8
    for case, row in zip(suite["cases"], table.to_dict("records"), strict=True):
        assert case["input"] == {"subject": row["subject"], "body": row["body"].replace("\r\n", "\n")}
        assert (case["expected"], case["category"]) == (row["__expected"], row["__metadata:category"])
        assert "scorer" not in case  # an `equals`-only test is the suite's default scorer on `expected`
    assert [c["expected"] for c in suite["cases"]] == table["__expected"].tolist()
    assert suite["labels"] == list(pd.unique(table["__expected"]))  # a classification task: the labels, in order
    assert [c["id"] for c in suite["cases"][:2]] == ["double-charge", "case-002"]  # __description names a case


def test_the_trim_transform_becomes_a_regex_that_trims(tmp_path):
    report, _ = _import("routing", tmp_path)
    pattern = _yaml(report.eval_file)["transform"]["regex"]
    for answer in ("  billing \n", "billing", "\tbilling issue\r\n\n"):
        assert re.search(pattern, answer).group(1) == answer.strip()


def test_hand_made_f1_maps_onto_classification_metrics(tmp_path):
    report, _ = _import("routing", tmp_path)
    skipped = _skipped(report)
    # the javascript counters of the promptfoo F1 workaround are weight 0: never pass/fail, so not converted
    assert "defaultTest: assert[0] javascript (metric 'true_positives')" in skipped
    assert "weight 0" in skipped["defaultTest: assert[0] javascript (metric 'true_positives')"]
    (note,) = [n for n in report.notes if n.startswith("derivedMetrics")]
    assert "'precision', 'recall', 'f1'" in note and "Results.classification()" in note
    assert not [what for what in skipped if what.startswith("metric ")]  # the counters are replaced, not lost


# ---- every spelling of prompts, providers and tests --------------------------------------------------------------
def test_every_prompt_spelling(tmp_path):
    report, out = _import("kitchen", tmp_path)
    entries = {entry["id"]: entry for entry in _yaml(report.eval_file)["prompts"]}
    assert list(entries) == ["prompt-1", "simple", "variants-1", "variants-2", "chat", "fewshot", "build", "shouting"]
    assert pl.load_prompt(out / entries["prompt-1"]["file"]).template == "Answer in one word: {{question}}"
    second = pl.load_prompt(out / entries["variants-2"]["file"])  # the second prompt of a `---` separated file
    assert second.template == "Be {{tone}}. Question: {{question}}\nAnswer:"
    assert pl.load_prompt(out / entries["shouting"]["file"]).temperature == 0.2  # the prompt's own config
    for name in ("chat", "fewshot", "build"):
        assert entries[name]["python"] == f"{MODULE}:prompt_{name}"
    skipped = _skipped(report)
    assert "convert by hand" in skipped["prompt file://prompts/build.js"]
    assert "no such file" in skipped["prompt file://prompts/missing.txt"]


def test_chat_and_python_prompts_render_through_the_adapters(tmp_path):
    _, out = _import("kitchen", tmp_path)
    adapters = _adapters(out)
    variables = {"tone": "pirate", "question": "Where is the ship?"}
    assert adapters.prompt_chat(variables) == [{"role": "system", "content": "You are a pirate assistant."},
                                               {"role": "user", "content": "Where is the ship?"}]
    assert [m["role"] for m in adapters.prompt_fewshot(variables)] == ["system", "user", "assistant", "user"]
    assert adapters.prompt_fewshot(variables)[-1]["content"] == "Where is the ship?"
    # the user's own python prompt, called with promptfoo's context ({vars, provider}): it branches on the tone
    assert adapters.prompt_build(variables)[0] == {"role": "system", "content": "Talk like a pirate."}
    assert adapters.prompt_build({"tone": "plain", "question": "Why?"}) == "Question: Why?\nAnswer:"


def test_a_fixed_system_chat_is_a_plain_prompt_file(tmp_path):
    config = tmp_path / "promptfooconfig.yaml"
    (tmp_path / "chat.json").write_text('[{"role": "system", "content": "Be terse."},\n'
                                        ' {"role": "user", "content": "{{ q }}"}]', encoding="utf-8")
    config.write_text("prompts: [file://chat.json]\nproviders: [anthropic:claude-3-5-haiku-20241022]\n"
                      "tests:\n  - vars: {q: hi}\n    assert: [{type: contains, value: hi}]\n", encoding="utf-8")
    report = import_promptfoo(config, tmp_path / "out")
    prompt = pl.load_prompt(tmp_path / "out" / "prompts" / "chat.yaml")
    assert (prompt.system, prompt.template) == ("Be terse.", "{{ q }}")
    assert prompt.model == "anthropic:claude-3-5-haiku-20241022"
    assert not (tmp_path / "out" / f"{MODULE}.py").exists() and not report.skipped


def test_providers_as_strings_records_objects_and_files(tmp_path):
    report, _ = _import("kitchen", tmp_path)
    models = _yaml(report.eval_file)["models"]
    assert models == [
        {"id": "openai:gpt-4o-mini"},
        {"id": "anthropic:claude-3-5-haiku-20241022", "label": "haiku",
         "params": {"temperature": 0.3, "max_tokens": 64}},
        {"id": "openai:gpt-4o", "params": {"temperature": 0}},  # its proxy is not gpt-4o-mini's endpoint
        {"id": "anthropic:claude-3-5-haiku-20241022", "label": "haiku from a file",
         "params": {"temperature": 0.7, "max_tokens": 32}},
    ]
    skipped = _skipped(report)
    assert "no 'vertex' provider" in skipped["provider vertex:gemini-1.5-pro"]
    assert "no 'https' provider" in skipped["provider https://api.example.com/generate"]
    top_p = "provider anthropic:messages:claude-3-5-haiku-20241022: config.top_p"
    assert "temperature, max_tokens and stop" in skipped[top_p]
    assert "every prompt on every model" in skipped["provider openai:chat:gpt-4o: prompts"]
    assert "environment" in skipped["provider openai:chat:gpt-4o: config.apiKey"]
    assert "one endpoint" in skipped["provider openai:gpt-4o: base_url https://proxy.example.com/v1"]


@pytest.mark.parametrize(("provider", "model"), [
    ("openai:gpt-4o-mini", {"id": "openai:gpt-4o-mini"}),
    ("openai:chat:gpt-4o-mini", {"id": "openai:gpt-4o-mini"}),
    ("openai:responses:o4-mini", {"id": "openai:o4-mini"}),
    ("anthropic:messages:claude-3-5-haiku-20241022", {"id": "anthropic:claude-3-5-haiku-20241022"}),
    ("anthropic:claude-3-5-haiku-20241022", {"id": "anthropic:claude-3-5-haiku-20241022"}),
    ("ollama:chat:llama3.1:8b", {"id": "openai:llama3.1:8b", "base_url": "http://localhost:11434/v1"}),
    ({"id": "openai:chat:qwen", "config": {"apiBaseUrl": "http://localhost:8000/v1", "max_tokens": 9}},
     {"id": "openai:qwen", "params": {"max_tokens": 9}, "base_url": "http://localhost:8000/v1"}),
    ({"id": "openai:chat:qwen", "config": {"apiHost": "llm.example.com"}},
     {"id": "openai:qwen", "base_url": "https://llm.example.com/v1"}),
])
def test_provider_ids(tmp_path, provider, model):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"prompts": ["{{q}}"], "providers": [provider], "tests": [{"vars": {"q": "a"}}]}),
                      encoding="utf-8")
    assert _yaml(import_promptfoo(config, tmp_path / "out").eval_file)["models"] == [model]


@pytest.mark.parametrize(("provider", "why"), [
    ("openai:embedding:text-embedding-3-small", "not a text model"),
    ("openai:completion:gpt-3.5-turbo-instruct", "legacy completions"),
    ("openai:chat", "names no model"),
    ("bedrock:anthropic.claude-3-haiku", "no 'bedrock' provider"),
    ("echo", "no 'echo' provider"),
])
def test_provider_ids_promptlab_cannot_call(tmp_path, provider, why):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"prompts": ["{{q}}"], "providers": [provider], "tests": [{"vars": {"q": "a"}}]}),
                      encoding="utf-8")
    report = import_promptfoo(config, tmp_path / "out")
    assert why in _skipped(report)[f"provider {provider}"] and "models" not in _yaml(report.eval_file)


def test_secrets_never_reach_a_file_or_the_report(tmp_path):
    report, out = _import("kitchen", tmp_path)
    texts = [path.read_text(encoding="utf-8") for path in out.rglob("*") if path.is_file()] + [report.summary()]
    for secret in SECRETS:
        assert not any(secret in text for text in texts)
    assert "env (OPENAI_API_KEY)" in _skipped(report)  # the name is reported, the value is not


def test_inline_tests_default_test_and_list_variables(tmp_path):
    _, out = _import("kitchen", tmp_path)
    cases = _suite(out)["cases"]
    combos = [c["input"] for c in cases if c["metadata"]["promptfoo_source"] == "tests[1]"]
    # promptfoo runs every combination of list-valued variables
    questions, tones = ["What is 2 + 2?", "What is 3 + 3?"], ["plain", "pirate"]
    assert combos == [{"tone": t, "question": q} for q, t in itertools.product(questions, tones)]
    assert [c["id"] for c in cases if c["metadata"]["promptfoo_source"] == "tests[1]"] == \
        ["combinations", "combinations-2", "combinations-3", "combinations-4"]
    by_source = _cases_by_source(out)
    assert by_source["tests[0]"]["input"] == {"tone": "plain", "question": "What is the capital of France?"}
    assert by_source["tests[2]"]["input"]["context"] == "Paris is the capital of France.\n"  # a file:// var, as is
    vars_file = by_source["tests[4]"]
    assert vars_file["input"] == {"tone": "plain", "question": "Name a primary colour.", "expected_word": "red"}
    assert vars_file["scorer"][-1] == {"type": "icontains", "value": "red"}  # {{expected_word}} rendered per case
    edge = by_source["edge.yaml test 1"]
    assert (edge["category"], edge["difficulty"], edge["tags"]) == ("edge_case", "medium", ["spanish"])
    assert by_source["more.jsonl test 2"]["id"] == "subtraction" and by_source["more.jsonl test 2"]["expected"] == "7"


def test_default_test_assertions_apply_unless_disabled(tmp_path):
    _, out = _import("kitchen", tmp_path)
    no_apology = {"type": "icontains", "value": "sorry", "negate": True}  # a $ref to assertionTemplates, not-icontains
    by_source = _cases_by_source(out)
    assert by_source["tests[0]"]["scorer"][0] == no_apology
    assert by_source["cases.csv row 1"]["scorer"][0] == no_apology
    quiet = by_source["tests[3]"]  # options.disableDefaultAsserts and no assertions of its own
    assert quiet["scorer"] == {"type": "python", "value": f"{MODULE}:no_assertions"} and "expected" not in quiet
    verdict = _adapters(out).no_assertions("anything", pl.Case(id="c", input="x"))
    assert (verdict.value, verdict.passed) == (None, None)  # kept with no verdict: NA, not a pass and not 0


def test_assertions_become_scorer_specs(tmp_path):
    report, out = _import("kitchen", tmp_path)
    first = _cases_by_source(out)["tests[0]"]
    assert first["expected"] == "Paris"
    assert first["scorer"][1:] == [
        {"type": "exact", "value": "Paris"}, {"type": "contains", "value": "Par"},
        {"type": "starts_with", "value": "P"}, {"type": "regex", "value": r"(?-i:^[A-Z]\w+$)"},
        {"type": "regex", "value": r"\d", "negate": True}, {"type": "contains", "value": "London", "negate": True},
        {"type": "judge", "value": "Names the capital of what is the capital of france? correctly",
         "model": "anthropic:claude-3-5-sonnet-20241022"},  # defaultTest.options.provider grades
    ]
    json_case = _cases_by_source(out)["tests[2]"]["scorer"]
    assert {"type": "json"} in json_case
    assert {"type": "contains_json", "value": {"type": "object", "required": ["a"]}} in json_case
    assert {"type": "any_of", "value": ["a", "b"]} in json_case
    assert [{"type": "icontains", "value": "A"}, {"type": "icontains", "value": "1"}] == json_case[4:6]
    assert [{"type": "icontains", "value": "a"}, {"type": "contains", "value": "1"}] == json_case[6:8]  # assert-set
    assert json_case[8]["type"] == "python"  # equals an object: parsed JSON compared, through an adapter
    skipped = _skipped(report)
    assert "convert by hand" in skipped["tests[2]: assert[4] javascript"]
    assert "embedding" in skipped["tests[2]: assert[5] similar"]
    assert "latency_s" in skipped["tests[4]: assert[1] latency"]
    assert "threshold" in skipped["tests[4]: threshold 0.5"]


def test_regex_patterns_match_as_promptfoo_matches_them():
    log = Log()
    from promptlab.importers._promptfoo_asserts import _regex

    pattern = _regex(r"^[A-Z]\w+$", log)
    assert re.search(pattern, "Paris", re.IGNORECASE) and not re.search(pattern, "paris", re.IGNORECASE)
    named = _regex(r"(?<year>\d{4})-(?<!x)\d", log)
    assert re.search(named, "2024-5").group("year") == "2024"
    assert _regex(r"\d+", Log()) == r"\d+"  # nothing cased: left as written


@pytest.mark.parametrize(("cell", "assertion"), [
    ("Paris", {"type": "equals", "value": "Paris"}),
    ("contains:Paris", {"type": "contains", "value": "Paris"}),
    ("contains: Paris", {"type": "contains", "value": "Paris"}),
    ("not-contains: error", {"type": "not-contains", "value": "error"}),
    ("icontains:paris", {"type": "icontains", "value": "paris"}),
    ("contains-any: <b>,</span>", {"type": "contains-any", "value": ["<b>", "</span>"]}),
    ("contains-json", {"type": "contains-json"}),
    ("is-json", {"type": "is-json"}),
    ('is-json: {"type": "object"}', {"type": "is-json", "value": '{"type": "object"}'}),
    ("regex:^Hello.*world$", {"type": "regex", "value": "^Hello.*world$"}),
    ("similar(0.8):Hello there", {"type": "similar", "value": "Hello there", "threshold": 0.8}),
    ("levenshtein(5):expected text", {"type": "levenshtein", "value": "expected text", "threshold": 5.0}),
    ("llm-rubric: Is helpful", {"type": "llm-rubric", "value": "Is helpful"}),
    ("grade:Does not mention being an AI", {"type": "llm-rubric", "value": "Does not mention being an AI"}),
    ("javascript: output.length < 10", {"type": "javascript", "value": "output.length < 10"}),
    ("fn:output.includes('hello')", {"type": "javascript", "value": "output.includes('hello')"}),
    ("python: len(output) > 10", {"type": "python", "value": "len(output) > 10"}),
    ("file://checks/custom.py:grade", {"type": "python", "value": "file://checks/custom.py:grade"}),
    ("file://assertions/custom.js", {"type": "javascript", "value": "file://assertions/custom.js"}),
    ("Answer: 42", {"type": "equals", "value": "Answer: 42"}),  # no known type before the colon: equals
])
def test_csv_assertion_shorthands_read_as_promptfoo_documents(cell, assertion):
    assert assertion_from_string(cell, Log()) == assertion


def test_csv_columns_metrics_metadata_and_configs(tmp_path):
    report, out = _import("kitchen", tmp_path)
    rows = {k: v for k, v in _cases_by_source(out).items() if k.startswith("cases.csv")}
    math_row = rows["cases.csv row 1"]
    assert math_row["input"] == {"tone": "plain", "question": "What is 2+2?", "_expected": "x"}
    assert math_row["scorer"][1:] == [{"type": "exact", "value": "4"}, {"type": "contains", "value": "4"}]
    assert math_row["tags"] == ["arith", "easy"] and math_row["metadata"]["promptfoo_metrics"] == ["math"]
    assert rows["cases.csv row 3"]["tags"] == ["greeting", "a,b"]  # __metadata:tags[] with an escaped comma
    assert rows["cases.csv row 2"]["scorer"][1:3] == [{"type": "icontains", "value": "rome"},
                                                      {"type": "contains", "value": "Paris", "negate": True}]
    assert rows["cases.csv row 4"]["scorer"][-1]["type"] == "judge"
    assert rows["cases.csv row 5"]["scorer"][1:] == [{"type": "json"}, {"type": "contains_json"}]
    assert rows["cases.csv row 6"]["expected"] == "Rome"
    assert "cases.csv row 3: assert[1] similar" in _skipped(report)
    assert any("'_expected'" in note and "'__expected'" in note for note in report.notes)


def test_python_assertions_keep_promptfoo_semantics(tmp_path):
    _, out = _import("kitchen", tmp_path)
    adapters = _adapters(out)
    names = {spec["value"].split(":")[1] for case in _suite(out)["cases"] for spec in case.get("scorer", [])
             if isinstance(spec, dict) and spec["type"] == "python"}
    assert names == {f"assert_{i}" for i in range(1, 8)}
    case = pl.Case(id="c", input={"question": "q", "tone": "plain"}, expected=None)
    assert adapters.assert_1("four", case).passed is True  # len(output) < 40
    assert adapters.assert_1("x" * 40, case).passed is False
    assert adapters.assert_2("", case).reason == "empty"  # a multi-line body returning {pass, score, reason}
    assert adapters.assert_3("An ERROR", case).passed is False  # not-python turns the verdict over
    assert adapters.assert_4("x" * 51, case).reason == "51 characters (limit 50)"  # file assert, its config
    short, long = adapters.assert_5("x" * 10, case), adapters.assert_5("x" * 60, case)  # a number vs threshold 0.5
    assert (short.value, short.passed, long.passed) == (0.9, True, False)


def test_a_number_without_threshold_passes_when_positive_as_in_promptfoo(tmp_path):
    shims = Shims(tmp_path, tmp_path / "promptfooconfig.yaml")
    src = Source(tmp_path, Log())
    name, _ = shims.python_assert("len(output) - 3", {}, None, False, src)
    bad, why = shims.python_assert("len(output) >", {}, None, False, src)
    assert bad is None and "does not compile" in why
    (tmp_path / f"{MODULE}.py").write_text(shims.render(), encoding="utf-8")
    adapters = _adapters(tmp_path)
    case = pl.Case(id="c", input="x", expected=None)
    scores = [getattr(adapters, name.split(":")[1])(text, case) for text in ("abcd", "abc", "")]
    assert [(s.value, s.passed) for s in scores] == [(1.0, True), (0.0, False), (-3.0, False)]


def test_transforms(tmp_path):
    log = Log()
    src, shims = Source(FIXTURES / "kitchen", log), Shims(tmp_path, FIXTURES / "kitchen" / "promptfooconfig.yml")
    assert convert_transform("JSON.parse(output).a.b[0]", "t", src, shims) == {"json_path": "$.a.b[0]"}
    assert convert_transform("return JSON.parse(output)['label'];", "t", src, shims) == {"json_path": "$['label']"}
    assert convert_transform("output.trim()", "t", src, shims) == {"regex": r"^\s*([\s\S]*?)\s*$"}
    assert convert_transform("file://transform.py", "t", src, shims) == {"python": f"{MODULE}:transform"}
    assert convert_transform("output.split(',')[0]", "t", src, shims) is None
    assert convert_transform("file://transform.js:fn", "t", src, shims) is None
    assert [what for what, _ in log.skipped] == ["t output.split(',')[0]", "t file://transform.js:fn"]
    (tmp_path / f"{MODULE}.py").write_text(shims.render(), encoding="utf-8")
    assert _adapters(tmp_path).transform("  Paris.  ") == "Paris"  # the user's get_transform, found by path


def test_one_transform_per_run_and_the_others_are_reported(tmp_path):
    report, _ = _import("kitchen", tmp_path)
    assert _yaml(report.eval_file)["transform"] == {"python": f"{MODULE}:transform"}  # defaultTest's python file
    assert "one transform" in _skipped(report)["options.transform 'JSON.parse(output).a' of 1 test(s)"]


def test_old_style_json_config_with_bom_crlf_globs_and_scenarios(tmp_path):
    report, out = _import("ugly", tmp_path)
    spec = _yaml(report.eval_file)
    assert [p["id"] for p in spec["prompts"]] == ["ask", "ask v2"]  # {path: label}, a bare path and a file://
    assert spec["models"] == [{"id": "openai:gpt-4o-mini"}]  # `targets`, a single string
    assert (spec["concurrency"], spec["report"]) == (2, "report.html")
    assert pl.load_prompt(out / "prompts" / "ask_v2.yaml").template.endswith("{{ question | tojson }}")
    cases = _suite(out)["cases"]
    assert [c["input"]["question"] for c in cases] == ["What is 1+1?", "Über, café?", "Say ok", "What is 2+2?",
                                                       "Hi?", "Hi?"]  # a.csv then b.csv; the repeated column's last
    assert [c["input"]["tone"] for c in cases] == ["neutral"] * 4 + ["formal", "casual"]  # defaultTest file, scenario
    assert "labels" not in _suite(out)  # short repeated answers, but not a classification task
    skipped = _skipped(report)
    assert "last one is used" in skipped["a.csv: column 'question'"]
    assert "extra cells" in skipped["a.csv: line 3"]
    assert "storeOutputAs" in " ".join(skipped) and "JavaScript" in skipped["transform output.toUpperCase()"]
    assert "report.html" not in " ".join(skipped) and "outputPath results.json" in skipped


# ---- errors ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "message"), [
    ("not_a_mapping.yaml", "a promptfoo config is a mapping"),
    ("no_prompts.yaml", "has no `prompts` (keys: description, providers, tests)"),
    ("broken.yaml", "broken.yaml:3: not valid YAML"),
    ("missing_tests.yaml", "no tests promptlab could read: tests[0]: file://missing.csv: no such file"),
])
def test_configs_that_cannot_import_say_why(tmp_path, name, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        import_promptfoo(FIXTURES / "bad" / name, tmp_path / "out")
    assert not (tmp_path / "out" / "promptlab.yaml").exists()


def test_a_missing_config_a_js_config_and_a_folder_without_one(tmp_path):
    with pytest.raises(ArgumentError, match="does not exist"):
        import_promptfoo(tmp_path / "promptfooconfig.yaml", tmp_path / "out")
    with pytest.raises(ArgumentError, match="JavaScript config"):
        import_promptfoo(tmp_path / "promptfooconfig.js", tmp_path / "out")
    with pytest.raises(ArgumentError, match="folder without a promptfoo config"):
        import_promptfoo(tmp_path, tmp_path / "out")


def test_an_existing_eval_file_is_not_replaced_unless_asked(tmp_path):
    _, out = _import("local", tmp_path)
    (out / "promptlab.yaml").write_text("# mine\n", encoding="utf-8")
    with pytest.raises(ArgumentError, match="already exists.*overwrite=True"):
        import_promptfoo(FIXTURES / "local", out)
    assert (out / "promptlab.yaml").read_text(encoding="utf-8") == "# mine\n"
    import_promptfoo(FIXTURES / "local", out, overwrite=True)
    assert _yaml(out / "promptlab.yaml")["prompts"] == [{"id": "sentiment", "file": "prompts/sentiment.yaml"},
                                                        {"id": "fewshot", "python": f"{MODULE}:prompt_fewshot"}]


def test_models_and_grader_override_the_config(tmp_path):
    report, out = _import("local", tmp_path, models=["local:gemma-3-270m"])
    spec = _yaml(report.eval_file)
    assert spec["models"] == [{"id": "local:gemma-3-270m", "params": {"max_tokens": 6}}]
    assert spec["params"] == {"temperature": [0, 0.7]}  # the providers' sweep is kept
    assert pl.load_prompt(out / "prompts" / "sentiment.yaml").model == "local:gemma-3-270m"
    _, out = _import("kitchen", tmp_path, grader="openai:gpt-4o-mini")  # as promptfoo's --grader: over defaultTest
    assert _cases_by_source(out)["tests[0]"]["scorer"][-1]["model"] == "openai:gpt-4o-mini"
    assert _cases_by_source(out)["cases.csv row 4"]["scorer"][-1]["model"] == "openai:gpt-4o-mini"
    config = tmp_path / "own.yaml"  # an assertion's own provider still wins, as in promptfoo
    config.write_text("prompts: ['{{q}}']\ntests:\n  - vars: {q: hi}\n    assert:\n      - type: llm-rubric\n"
                      "        value: friendly\n        provider: anthropic:messages:claude-3-5-haiku-20241022\n"
                      "      - type: llm-rubric\n        value: short\n        threshold: 0.8\n", encoding="utf-8")
    report = import_promptfoo(config, tmp_path / "own", grader="openai:gpt-4o-mini")
    assert _suite(tmp_path / "own")["cases"][0]["scorer"] == [
        {"type": "judge", "value": "friendly", "model": "anthropic:claude-3-5-haiku-20241022"},
        {"type": "judge", "value": "short", "model": "openai:gpt-4o-mini", "threshold": 0.8}]
    assert _yaml(report.eval_file)["prompts"][0]["file"] == "prompts/prompt_1.yaml"
    assert any("no provider could be converted" in note for note in report.notes)
    assert pl.load_prompt(tmp_path / "own" / "prompts" / "prompt_1.yaml").model == "local:gemma-3-270m"


# ---- the command -------------------------------------------------------------------------------------------------
def _cli(argv: list[str]) -> int:
    from promptlab.cli._import import add_import_commands

    parser = argparse.ArgumentParser(prog="promptlab")
    handlers = add_import_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return handlers[args.command](args)


def test_the_command_prints_what_was_written_and_what_was_not_converted(tmp_path, capsys):
    out = tmp_path / "imported"
    assert _cli(["import", "promptfoo", str(FIXTURES / "kitchen" / "promptfooconfig.yml"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"  {out / 'promptlab.yaml'}" in printed and "not converted (" in printed
    assert "  - tests[2]: assert[4] javascript: JavaScript is not run: convert by hand" in printed
    assert f"run it: promptlab eval -c {out / 'promptlab.yaml'}" in printed
    assert _cli(["import", "promptfoo", str(FIXTURES / "kitchen"), "-o", str(out), "--force", "--strict"]) == 1
    with pytest.raises(PromptlabError, match="already exists"):  # promptlab.cli.main turns this into exit 2
        _cli(["import", "promptfoo", str(FIXTURES / "kitchen"), "-o", str(out)])


def test_the_command_takes_models_like_promptfoos_providers_flag(tmp_path, capsys):
    out = tmp_path / "imported"
    code = _cli(["import", "promptfoo", str(FIXTURES / "routing"), "-o", str(out), "--model", "local:gemma-3-270m",
                 "--model", "anthropic:claude-3-5-haiku-20241022", "--strict"])
    assert code == 1  # the weight-0 javascript counters were not converted
    assert [m["id"] for m in _yaml(out / "promptlab.yaml")["models"]] == ["local:gemma-3-270m",
                                                                          "anthropic:claude-3-5-haiku-20241022"]
    assert "wrote 4 files" in capsys.readouterr().out


def test_the_importer_is_on_the_evaluation_face():
    assert pl.importers.import_promptfoo is import_promptfoo
    assert pl.importers.ImportReport.__name__ == "ImportReport"
    assert "promptfoo" in sys.modules["promptlab.importers._promptfoo"].__doc__


def test_a_schema_in_a_csv_cell_and_variables_made_of_variables(tmp_path):
    (tmp_path / "t.csv").write_text('item,topic,__expected\n"tweet about {{topic}}",bananas,'
                                    '"is-json: {""type"": ""object"", ""required"": [""text""]}"\n', encoding="utf-8")
    (tmp_path / "c.yaml").write_text("prompts: ['Write a {{item}} as JSON']\ntests: file://t.csv\n", encoding="utf-8")
    report = import_promptfoo(tmp_path / "c.yaml", tmp_path / "out")
    (case,) = _suite(tmp_path / "out")["cases"]
    assert case["scorer"] == {"type": "json", "value": {"type": "object", "required": ["text"]}}
    assert case["input"] == {"item": "tweet about {{topic}}", "topic": "bananas"}
    assert any("variables that use other variables" in note for note in report.notes)


# ---- end to end: the imported files load with load_eval and run -----------------------------------------------
@pytest.fixture
def keys(monkeypatch):
    """Judges build their provider when the eval file loads; these runs never call them."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")


@pytest.mark.parametrize("name", ["routing", "kitchen", "ugly", "local"])
def test_every_imported_config_loads_with_load_eval(tmp_path, keys, name):
    report, out = _import(name, tmp_path)
    spec = pl.load_eval(report.eval_file)
    written = _yaml(report.eval_file)
    assert list(spec.variants) == [entry["id"] for entry in written["prompts"]]
    assert [case.id for case in spec.suite] == [case["id"] for case in _suite(out)["cases"]]
    assert spec.suite.labels == (tuple(_suite(out)["labels"]) if "labels" in _suite(out) else None)
    assert spec.params == written.get("params")


def _label_of(subjects: dict[str, str], request) -> str:
    text = request.messages[-1].content
    return next(label for subject, label in subjects.items() if f"Subject: {subject}" in text)


def test_the_imported_sweep_runs_on_a_fake_provider(tmp_path):
    report, _ = _import("routing", tmp_path)
    spec = pl.load_eval(report.eval_file)
    table = pd.read_csv(FIXTURES / "routing" / "tests.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    subjects = dict(zip(table["subject"], table["__expected"], strict=True))

    def answer(request):  # router answers right (padded: the trim transform runs); terse always says "Other."
        is_router = request.messages[-1].content.startswith("You route")
        return f"  {_label_of(subjects, request)} \n" if is_router else "Other."

    results = spec.run(providers={"openai": pl.FakeProvider(answer)}, progress=False, cache=False)
    df = results.df
    assert len(df) == len(table) * 2 * 4 * 2  # cases x prompts x temperatures x repeats (evaluateOptions.repeat)
    assert sorted(set(df["variant"])) == sorted(f"{p}[temperature={t}]" for p in ("router", "terse")
                                                for t in (0, 0.4, 0.8, 1.2))
    assert {(p["temperature"], p["max_tokens"]) for p in df["params"]} == {(t, 16) for t in (0, 0.4, 0.8, 1.2)}
    router = df[df["variant"].str.startswith("router")]
    assert (router["output"] == router["output_raw"].str.strip()).all() and router["passed"].all()
    accuracy = results.summary().set_index("variant")["accuracy"]
    expected_terse = (table["__expected"] == "other").mean()  # "Other." reads as the label other
    assert accuracy["terse[temperature=0.8]"] == pytest.approx(expected_terse)
    assert accuracy["router[temperature=0]"] == 1.0


def test_the_kitchen_runs_on_fake_providers_through_every_adapter(tmp_path, keys):
    report, out = _import("kitchen", tmp_path)
    spec = pl.load_eval(report.eval_file)
    judged = {case["id"] for case in _suite(out)["cases"] if "judge" in str(case.get("scorer"))}
    spec = spec.with_changes(suite=spec.suite.filter(lambda case: case.id not in judged),
                             models=[m for m in spec.models if m.label is None])  # the two unlabelled models
    fake = pl.FakeProvider(lambda request: "Four.")
    results = spec.run(providers={"openai": fake, "anthropic": fake}, progress=False, cache=False)
    df = results.df
    assert set(df["variant"]) == set(spec.variants) and df["error_type"].isna().all()
    assert df.loc[df["case_id"] == "no-assertions-at-all", "passed"].isna().all()
    assert (df["output"] == "Four").all()  # the user's python transform: strip, then strip "."
    pirate = [r for r in fake.calls if r.system == "Talk like a pirate."]  # build.py's branch, through its adapter
    assert pirate and all(r.messages[-1].content.startswith("What is") for r in pirate)
    combos = df[df["case_id"] == "combinations"]
    assert combos["passed"].all() and combos["reason"].str.startswith("all 6 passed").all()
    assert not df[df["case_id"] == "case-011"]["passed"].any()  # equals 8 on "Four"


@pytest.mark.local_model
def test_an_imported_promptfoo_config_runs_end_to_end_on_the_local_model(tmp_path):
    report, _ = _import("local", tmp_path, models=["local:gemma-3-270m"])  # like promptfoo's --providers
    spec = pl.load_eval(report.eval_file)
    results = spec.run(progress=False, cache=False)
    df = results.df
    assert len(df) == 3 * 2 * 2 and set(df["model_served"]) == {"local:gemma-3-270m"}  # cases x prompts x temps
    assert set(df["variant"]) == {f"{p}[temperature={t}]" for p in ("sentiment", "fewshot") for t in (0, 0.7)}
    assert sorted({(p["temperature"], p["max_tokens"]) for p in df["params"]}) == [(0, 6), (0.7, 6)]
    assert df["error_type"].isna().all() and df["output_raw"].notna().all()
    # at temperature 0 the answers are deterministic and not empty; at 0.7 the model may sample its end token first
    # (an empty answer is a real answer: seen once in CI, for the sentiment prompt)
    greedy = df["params"].map(lambda p: p["temperature"] == 0)
    assert df.loc[greedy, "output_raw"].str.len().gt(0).all()
    assert (df["output"] == df["output_raw"].str.strip()).all()  # output.trim() became a regex transform
    # every row has a verdict: the python length check and the label, on the transformed answer
    want = [len(out) < 200 and expected in out.lower() for out, expected in zip(df["output"], df["expected"],
                                                                                 strict=True)]
    assert df["passed"].tolist() == want
    fewshot = df[df["variant"].str.startswith("fewshot")]  # the chat adapter's turns reach the model
    assert fewshot["output"].str.lower().isin(["positive", "negative"]).mean() >= 0.5


def test_yaml_anchors_and_assertions_python_cannot_build(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "x-model: &model\n  id: openai:gpt-4o-mini\n  config: {temperature: 0.1}\n"
        "prompts: ['{{q}}']\nproviders:\n  - <<: *model\n    label: anchored\n"
        "tests:\n  - vars: {q: a}\n    assert:\n      - {type: regex, value: '(?<=a+)b'}\n"
        "      - {type: is-json, value: {type: 12}}\n      - {type: contains, value: a}\n", encoding="utf-8")
    report = import_promptfoo(tmp_path / "c.yaml", tmp_path / "out")
    assert _yaml(report.eval_file)["models"] == [{"id": "openai:gpt-4o-mini", "label": "anchored",
                                                  "params": {"temperature": 0.1}}]
    assert _suite(tmp_path / "out")["cases"][0]["scorer"] == {"type": "contains", "value": "a"}
    skipped = _skipped(report)
    assert "not a valid regular expression" in skipped["tests[0]: assert[0] regex"]  # a JS lookbehind
    assert "not a valid JSON Schema" in skipped["tests[0]: assert[1] is-json"]
    assert "not a promptfoo setting" in skipped["x-model"]


def test_odd_shapes_are_reported_not_crashed_on(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "prompts: 'Say {{q}}'\nproviders: {id: openai:gpt-4o-mini}\ndefaultTest: {options: nope, metadata: [1]}\n"
        "tests:\n  vars: {q: hi}\n  options: [transform]\n  assert: {type: contains, value: hi}\n  metadata: 3\n",
        encoding="utf-8")
    report = import_promptfoo(tmp_path / "c.yaml", tmp_path / "out")
    (case,) = _suite(tmp_path / "out")["cases"]  # `tests` as one mapping, `assert` as one mapping
    assert case["scorer"] == {"type": "contains", "value": "hi"} and case["input"] == {"q": "hi"}
    skipped = _skipped(report)
    assert {"defaultTest: options", "defaultTest: metadata", "tests[0]: options", "tests[0]: metadata"} <= set(skipped)
    assert _yaml(report.eval_file)["models"] == [{"id": "openai:gpt-4o-mini"}]
