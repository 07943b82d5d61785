"""Runner params and transforms (issue 14, item 2): a params grid becomes a dimension of the results (no prompt
copies; rows record their params), models carry their own params, and an output transform runs before scoring."""

from __future__ import annotations

import json

import pytest

import promptlab as pl
from promptlab.errors import ArgumentError, RunArgumentError
from promptlab.evaluation import ModelConfig, Transform
from promptlab.evaluation._plan import param_grid
from promptlab.evaluation._transforms import as_transform, parse_json_path

PROMPT = pl.Prompt(name="router", version="3", model="fake:router", max_tokens=64,
                   system="Route the ticket.", template="Ticket: {{ input }}")


def suite(n: int = 3) -> pl.Suite:
    cases = pl.Suite("tickets", labels=["billing", "tech"])
    for i in range(n):
        cases.add_case(f"ticket {i}", "billing" if i % 2 == 0 else "tech", id=f"t{i}")
    return cases


def by_temperature(request):
    """Right at temperature 0, always 'billing' when hot: the sweep must show the difference."""
    number = int(request.messages[-1].content.split()[-1])
    right = "billing" if number % 2 == 0 else "tech"
    return f"Label: {right}" if request.temperature == 0 else "Label: billing"


def run(**options):
    options.setdefault("progress", False)
    options.setdefault("cache", False)
    return pl.run(suite(), {"A": PROMPT}, options.pop("model", pl.FakeProvider(by_temperature)), **options)


# ---- the grid ---------------------------------------------------------------------------------------------------
def test_a_temperature_sweep_is_a_dimension_of_the_results():
    fake = pl.FakeProvider(by_temperature)
    results = run(model=fake, params={"temperature": [0, 0.4, 0.8], "max_tokens": 64})
    df = results.df
    assert list(dict.fromkeys(df["variant"])) == ["A[temperature=0]", "A[temperature=0.4]", "A[temperature=0.8]"]
    assert len(df) == 9 and sorted({r.temperature for r in fake.calls}) == [0, 0.4, 0.8]
    assert {r.max_tokens for r in fake.calls} == {64}
    assert df["params"].iloc[0] == {"max_tokens": 64, "temperature": 0}
    assert df.groupby("variant")["passed"].mean().to_dict() == {
        "A[temperature=0]": 1.0, "A[temperature=0.4]": 2 / 3, "A[temperature=0.8]": 2 / 3}
    # no prompt copies: one name and version; the hash is what ran (the file's own at its own temperature)
    assert set(df["prompt_name"]) == {"router"} and set(df["prompt_version"]) == {"3"}
    hashes = df.groupby("variant")["prompt_hash"].first()
    assert hashes["A[temperature=0]"] == PROMPT.content_hash
    assert hashes["A[temperature=0.4]"] == PROMPT.with_changes(temperature=0.4).content_hash != PROMPT.content_hash
    assert results.meta["params"] == {"temperature": [0, 0.4, 0.8], "max_tokens": 64}
    assert set(results.meta["prompts"]) == set(df["variant"])


def test_the_sweep_compares_paired_by_case():
    results = run(params={"temperature": [0, 0.8]})
    comparison = pl.compare(results, baseline="A[temperature=0]")
    row = comparison.df.iloc[0]
    assert (row["variant"], row["metric"], row["n"]) == ("A[temperature=0.8]", "passed", 3)
    assert row["diff"] == pytest.approx(2 / 3 - 1)  # 1 of 3 cases goes wrong when hot


def test_fixed_params_keep_the_variant_name_and_are_recorded():
    results = run(params={"temperature": 0.7})
    assert set(results.df["variant"]) == {"A"}
    assert all(p == {"temperature": 0.7} for p in results.df["params"])
    plain = run()
    assert plain.df["params"].isna().all() and plain.meta["params"] is None


def test_several_dimensions_name_every_varying_key_sorted():
    grid = param_grid({"temperature": [0, 1], "max_tokens": [16, 32], "stop": ["\n"]})
    assert len(grid) == 4 and grid[0] == {"max_tokens": 16, "stop": ["\n"], "temperature": 0}
    results = run(params={"temperature": [0, 1], "max_tokens": [16, 32]})
    assert "A[max_tokens=16,temperature=1]" in set(results.df["variant"])


def test_stop_lists_are_values_and_lists_of_lists_a_dimension():
    assert param_grid({"stop": ["\n", "###"]}) == [{"stop": ["\n", "###"]}]
    assert param_grid({"stop": [["\n"], ["###"]]}) == [{"stop": ["\n"]}, {"stop": ["###"]}]
    fake = pl.FakeProvider("Label: billing")
    run(model=fake, params={"stop": [["\n"], ["###"]]})
    assert {r.stop for r in fake.calls} == {("\n",), ("###",)}


@pytest.mark.parametrize("params, fragment", [
    ({"temprature": [0, 1]}, "unknown param(s) ['temprature']. Allowed: temperature, max_tokens, stop"),
    ({"temperature": [0, 3]}, "temperature=3 (write a number within [0, 2])"),
    ({"max_tokens": 0}, "max_tokens=0 (write a whole number > 0)"),
    ({"temperature": []}, "temperature is an empty list"),
    ({"temperature": [0, 0]}, "repeats a value"),
    ([0, 1], "params must be a mapping"),
])
def test_bad_params_are_refused_before_any_call(params, fragment):
    fake = pl.FakeProvider("x")
    with pytest.raises(RunArgumentError) as info:
        run(model=fake, params=params)
    assert fragment in str(info.value) and not fake.calls


def test_the_estimate_counts_every_grid_point():
    table = pl.estimate(suite(), {"A": PROMPT}, "local:gemma-3-270m", params={"temperature": [0, 0.5]})
    assert set(table["variant"]) == {"A[temperature=0]", "A[temperature=0.5]"}


def test_params_survive_save_and_load(tmp_path):
    results = run(params={"temperature": [0, 0.4]})
    loaded = pl.Results.load(results.save(tmp_path / "r.parquet"))
    assert list(loaded.df["params"]) == list(results.df["params"])
    assert json.loads(json.dumps(loaded.meta["params"])) == {"temperature": [0, 0.4]}


# ---- models with their own params ---------------------------------------------------------------------------------
def test_a_model_listed_twice_with_different_params_is_two_arms_on_one_model_id():
    fake = pl.FakeProvider(by_temperature, model_name="m")
    cold, hot = ModelConfig(fake, {"temperature": 0}, label="cold"), ModelConfig(fake, {"temperature": 1}, label="hot")
    results = run(model=[cold, hot])
    assert set(results.df["model"]) == {"fake:m"}  # the canonical id: prices and caches key on it
    assert sorted(set(results.df["variant"])) == ["A[temperature=0]", "A[temperature=1]"]
    assert [m["label"] for m in results.meta["models"]] == ["cold", "hot"]


def test_a_models_params_apply_to_its_rows_only_and_do_not_rename():
    a, b = pl.FakeProvider("Label: billing", model_name="a"), pl.FakeProvider("Label: tech", model_name="b")
    b.name = "fake2"  # two providers in one run need two names
    results = run(model=[ModelConfig(a, {"max_tokens": 8}), ModelConfig(b)], params={"temperature": 0.2})
    assert set(results.df["variant"]) == {"A"}
    by_model = results.df.groupby("model")["params"].first().to_dict()
    assert by_model == {"fake:a": {"temperature": 0.2, "max_tokens": 8}, "fake2:b": {"temperature": 0.2}}
    assert {r.max_tokens for r in a.calls} == {8} and {r.max_tokens for r in b.calls} == {64}


def test_model_params_that_clash_or_repeat_are_refused():
    fake = pl.FakeProvider("x")
    with pytest.raises(RunArgumentError, match="sets \\['temperature'\\], which the params grid varies"):
        run(model=[ModelConfig(fake, {"temperature": 0})], params={"temperature": [0, 1]})
    with pytest.raises(RunArgumentError, match="would run twice"):
        run(model=[ModelConfig(fake), ModelConfig(fake)])
    with pytest.raises(RunArgumentError, match="hold lists"):
        ModelConfig(fake, {"temperature": [0, 1]})


# ---- transforms ---------------------------------------------------------------------------------------------------
def test_a_regex_transform_runs_before_scoring_and_keeps_the_raw_text():
    results = run(transform=Transform.regex(r"Label: (\w+)"))
    df = results.df
    assert list(df["output"]) == ["billing", "tech", "billing"] and df["passed"].all()
    assert list(df["output_raw"]) == ["Label: billing", "Label: tech", "Label: billing"]
    assert results.meta["transform"] == "regex 'Label: (\\\\w+)'"
    assert run().df["output_raw"].isna().all() and run().meta["transform"] is None


def test_a_transform_that_fails_is_a_row_not_a_crash():
    answers = {"Ticket: ticket 0": "Label: billing", "Ticket: ticket 1": "no idea", "Ticket: ticket 2": "?"}
    results = run(model=pl.FakeProvider(answers), transform={"regex": r"Label: (\w+)"})
    df = results.df.set_index("case_id")
    assert df.loc["t0", "passed"] and df.loc["t0", "error_type"] is pd_na()
    bad = df.loc["t1"]
    assert bad["error_type"] == "transform_error"
    assert "/Label: (\\w+)/ does not match the answer 'no idea'" in bad["error"]
    assert bad["output_raw"] == "no idea" and bad["output"] is pd_na() and bad["passed"] is pd_na()
    # two thirds of the answers are unreadable, past max_error_rate: the run still returns (they are answers)
    assert results.accuracy()["accuracy"].iloc[0] == pytest.approx(1 / 3)


def pd_na():
    import pandas as pd

    return pd.NA


def test_json_path_and_python_transforms(tmp_path):
    answers = {"Ticket: ticket 0": 'Sure: {"route": {"labels": ["billing"]}}',
               "Ticket: ticket 1": '```json\n{"route": {"labels": ["tech", "x"]}}\n```',
               "Ticket: ticket 2": '{"route": {}}'}
    results = run(model=pl.FakeProvider(answers), transform={"json_path": "$.route.labels[0]"})
    df = results.df.set_index("case_id")
    assert list(df["output"][:2]) == ["billing", "tech"] and df.loc["t2", "error_type"] == "transform_error"
    assert "$.route.labels[0]: no key 'labels' in {}" in df.loc["t2", "error"]
    (tmp_path / "clean.py").write_text("def first_word(text):\n    return text.split()[-1].upper()\n")
    upper = Transform.python("clean:first_word", base_dir=tmp_path)
    assert upper("Label: billing") == "BILLING" and upper.description == "python clean:first_word"
    assert as_transform(str.strip)(" x ") == "x"
    assert as_transform(lambda text: {"a": 1})("x") == '{"a": 1}'


def test_a_python_transform_that_raises_names_itself():
    results = run(transform=lambda text: 1 / 0)
    assert set(results.df["error_type"]) == {"transform_error"}
    assert "raised ZeroDivisionError: division by zero" in results.df["error"].iloc[0]


@pytest.mark.parametrize("path, steps", [
    ("$.a.b[0]", ["a", "b", 0]), ("$['key with space'][-1]", ["key with space", -1]), ("$", []),
    ('$["x"].y', ["x", "y"]),
])
def test_json_paths_read(path, steps):
    assert parse_json_path(path) == steps


@pytest.mark.parametrize("spec, fragment", [
    ("$..a", "cannot read '..a'"), ("a.b", "starts with $"), ({"regx": "x"}, "Did you mean 'regex'?"),
    ({"regex": "(x"}, "not a valid regular expression"), (5, "transform must be a Transform"),
])
def test_bad_transforms_are_refused(spec, fragment):
    with pytest.raises(ArgumentError, match=None) as info:
        as_transform({"json_path": spec} if isinstance(spec, str) else spec)
    assert fragment in str(info.value)
