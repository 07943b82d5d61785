"""The prompt search's candidates: `Candidate` and `derive`, few-shot sets and orders, bootstrapped demos, the
instruction rewrite library, the LLM proposer over both wire formats, and compression and routing as moves."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import numpy as np
import pytest

import promptlab as pl
from promptlab.authoring._prompt import FewShotExample
from promptlab.errors import ArgumentError, CompressionError
from promptlab.optimize import (
    REWRITES,
    Candidate,
    bootstrap_demos,
    compression_candidates,
    fewshot_candidates,
    instruction_candidates,
    order_candidates,
    propose_instructions,
    routing_candidates,
    start_candidate,
)
from promptlab.optimize._candidates import derive, start_version
from promptlab.optimize._fewshot import draw_typical, input_text, pool_examples
from promptlab.optimize._instructions import definition_lines, failure_rows, parse_proposals
from promptlab.providers import AnthropicProvider, FakeProvider, OpenAIProvider
from promptlab.registry._registry import Registry
from promptlab.testing import ANTHROPIC_PATH, OPENAI_PATH, FakeLLMServer

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["billing", "refund", "technical_issue", "account_access", "shipping", "cancellation", "feature_request",
          "other"]


@pytest.fixture(scope="module")
def prompt() -> pl.Prompt:
    return pl.load_prompt(ROOT / "prompts/support/ticket_intent.yaml")


@pytest.fixture(scope="module")
def suite() -> pl.Suite:
    return pl.load_suite(ROOT / "suites/support_tickets.yaml")


@pytest.fixture
def base(prompt) -> Candidate:
    return start_candidate(prompt)


def labelled_pool(per_label: int = 3, labels=("a", "b", "c")) -> pl.Suite:
    """A pool of ``per_label`` cases per label, with unicode and dict inputs mixed in."""
    pool = pl.Suite("pool", labels=list(labels))
    for label in labels:
        for i in range(per_label):
            pool.add_case({"subject": f"{label} {i} ✓", "body": f"body of {label}-{i} — ünïcode"}, label)
    return pool


# ---- Candidate and derive ------------------------------------------------------------------------------------
def test_start_candidate_is_the_prompt_as_written(prompt):
    start = start_candidate(prompt, model="local:gemma-3-270m")
    assert (start.name, start.prompt, start.model, start.moves, start.origin) == (
        "start", prompt, "local:gemma-3-270m", (), "start")
    with pytest.raises(AttributeError):
        start.name = "other"  # frozen


def test_a_candidate_refuses_an_unknown_origin_and_a_non_prompt(prompt):
    with pytest.raises(ArgumentError, match="origin 'magic' is unknown"):
        Candidate("x", prompt, origin="magic")
    with pytest.raises(ArgumentError, match="needs a promptlab Prompt"):
        Candidate("x", "You are a classifier")


def test_derive_versions_the_new_prompt_by_its_content_and_records_the_moves(base):
    first = derive(base, "fewshot:x", "fewshot", "two examples", few_shot_examples=base.prompt.few_shot_examples[:2])
    second = derive(first, "instruction:y", "instruction", "shorter", system="Classify the ticket.")
    assert first.prompt.version == f"1.0.0+search.{first.prompt.content_hash[:8]}"
    assert second.prompt.version == f"1.0.0+search.{second.prompt.content_hash[:8]}"
    assert start_version(second.prompt) == "1.0.0"
    assert second.moves == ("two examples", "shorter") and second.origin == "instruction"
    assert second.prompt.metadata["search"] == {"from_version": "1.0.0", "moves": ["two examples", "shorter"]}
    # one changelog entry for the search, above the registered history; the intermediate one is gone
    assert [e.version for e in second.prompt.changelog] == [second.prompt.version, "1.0.0"]
    assert "two examples; shorter" in second.prompt.changelog[0].changes
    assert len(second.prompt.few_shot_examples) == 2 and base.prompt.system != second.prompt.system
    assert len({base.prompt.content_hash, first.prompt.content_hash, second.prompt.content_hash}) == 3


def test_a_derived_prompt_registers_as_a_new_version(tmp_path, base):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "prompts", repo / "prompts")
    shutil.copytree(ROOT / "configs", repo / "configs")
    registry = Registry(repo)
    winner = derive(base, "instruction:z", "instruction", "format line", system=base.prompt.system + "\nBe brief.")
    registry.register(winner.prompt, group="support")
    assert registry.get(f"ticket_intent@{winner.prompt.version}").content_hash == winner.prompt.content_hash


# ---- few-shot sets ---------------------------------------------------------------------------------------------
def test_coverage_shows_every_label_once_when_k_equals_the_labels(base, suite):
    pool = suite.filter(category="happy_path")
    found = fewshot_candidates(base, pool, ks=(8,), n_random=3, strategies=("coverage",), seed=1)
    assert [c.name for c in found] == ["fewshot:coverage:k8:s0", "fewshot:coverage:k8:s1", "fewshot:coverage:k8:s2"]
    pool_inputs = [case.input for case in pool]
    for candidate in found:
        examples = candidate.prompt.few_shot_examples
        assert [e.output for e in examples] == LABELS  # the prompt's label order
        assert all(e.input in pool_inputs for e in examples)
        assert candidate.origin == "fewshot" and candidate.prompt.system == base.prompt.system
    # the draws differ: another example stands for some label
    assert len({c.prompt.content_hash for c in found}) == 3


def test_coverage_below_the_label_count_shows_k_different_labels(base, suite):
    found = fewshot_candidates(base, suite, ks=(4,), n_random=5, strategies=("coverage",))
    for candidate in found:
        outputs = [e.output for e in candidate.prompt.few_shot_examples]
        assert len(outputs) == 4 and len(set(outputs)) == 4


def test_coverage_past_the_labels_goes_round_again_and_stops_at_the_pool():
    start = start_candidate(pl.Prompt(name="t", version="1", model="fake:m", template="{{ subject }} {{ body }}"))
    pool = labelled_pool(per_label=2)
    (six,) = fewshot_candidates(start, pool, ks=(6,), n_random=1, strategies=("coverage",))
    assert collections.Counter(e.output for e in six.prompt.few_shot_examples) == {"a": 2, "b": 2, "c": 2}
    (capped,) = fewshot_candidates(start, pool, ks=(50,), n_random=1, strategies=("coverage",))
    assert len(capped.prompt.few_shot_examples) == 6


def test_draws_are_seeded_and_the_seed_matters(base, suite):
    def names_and_hashes(seed):
        return [(c.name, c.prompt.content_hash) for c in fewshot_candidates(base, suite, ks=(2, 4), seed=seed)]

    assert names_and_hashes(0) == names_and_hashes(0)
    assert names_and_hashes(0) != names_and_hashes(1)
    random_k2 = [c for c in fewshot_candidates(base, suite, ks=(2,), strategies=("random",))]
    assert {len(c.prompt.few_shot_examples) for c in random_k2} == {2}


def test_adding_a_k_leaves_the_other_sets_unchanged(base, suite):
    small = {c.name: c.prompt.content_hash for c in fewshot_candidates(base, suite, ks=(2,))}
    more = {c.name: c.prompt.content_hash for c in fewshot_candidates(base, suite, ks=(2, 4))}
    assert all(more[name] == digest for name, digest in small.items())


def test_a_set_equal_to_the_base_or_to_another_is_left_out():
    prompt = pl.Prompt(name="t", version="1", model="fake:m")
    pool = pl.Suite("one", labels=["x"])
    pool.add_case("only", "x")
    start = start_candidate(prompt)
    found = fewshot_candidates(start, pool, ks=(1, 2), n_random=3, strategies=("random", "coverage"))
    assert [c.name for c in found] == ["fewshot:random:k1:s0"]  # every other draw is the same one example
    assert fewshot_candidates(found[0], pool, ks=(1,), strategies=("random",)) == []


def test_bootstrap_and_similar_are_skipped_without_demos_or_embed(base, suite):
    found = fewshot_candidates(base, suite, ks=(2,), strategies=("bootstrap", "similar"))
    assert found == []
    assert fewshot_candidates(base, suite, strategies=("bootstrap",), demos=pl.Suite("none")) == []


def test_bad_arguments_and_unlabelled_pools_are_refused(base, suite):
    with pytest.raises(ArgumentError, match="'nearest'"):
        fewshot_candidates(base, suite, strategies=("nearest",))
    with pytest.raises(ArgumentError, match=r"\[0\]"):
        fewshot_candidates(base, suite, ks=(0,))
    with pytest.raises(ArgumentError, match="empty"):
        fewshot_candidates(base, pl.Suite("none"))
    unlabelled = pl.Suite("u")
    unlabelled.add_case("hello", None)
    with pytest.raises(ArgumentError, match="expected=None"):
        fewshot_candidates(base, unlabelled)
    with pytest.raises(ArgumentError, match="expected=nan"):
        pool_examples([pl.Case(id="n", input="x", expected=float("nan"))])


def test_a_pool_whose_inputs_miss_the_templates_variables_is_refused_clearly(base):
    pool = pl.Suite("text-only", labels=["billing"])
    pool.add_case("my card was charged twice", "billing")
    with pytest.raises(ArgumentError, match=r"invalid prompt from ticket_intent@1.0.0: .*subject"):
        fewshot_candidates(base, pool, ks=(1,), strategies=("random",))


def embed_by_letters(texts):
    """A toy embedding: letter counts of a, e, i, o, u, x (deterministic, no model)."""
    return [[text.count(ch) for ch in "aeioux"] for text in texts]


def test_similar_picks_the_cases_nearest_each_labels_mean_vector():
    pool = pl.Suite("p", labels=["a", "b"])
    texts = {"a": ["aaa", "aae", "aeeeee", "aaaaaa"], "b": ["uuu", "uuo", "ooooox", "uuuuuu"]}
    for label, items in texts.items():
        for text in items:
            pool.add_case(text, label)
    start = start_candidate(pl.Prompt(name="t", version="1", model="fake:m"))
    found = fewshot_candidates(start, pool, ks=(2, 4), strategies=("similar",), embed=embed_by_letters)
    assert [c.name for c in found] == ["fewshot:similar:k2", "fewshot:similar:k4"]
    # the reference: numpy cosine to each label's centroid, highest first (independent of our own arithmetic)
    expected = []
    for items in texts.values():
        vectors = np.array(embed_by_letters(items), dtype=float)
        centre = vectors.mean(axis=0)
        cosine = vectors @ centre / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(centre))
        expected.append([items[i] for i in np.argsort(-cosine, kind="stable")])
    k4 = [e.input for e in found[1].prompt.few_shot_examples]
    assert k4 == [expected[0][0], expected[1][0], expected[0][1], expected[1][1]]
    assert [e.input for e in found[0].prompt.few_shot_examples] == k4[:2]


def test_similar_refuses_an_embedding_of_the_wrong_shape(base, suite):
    with pytest.raises(ArgumentError, match="one vector per text"):
        fewshot_candidates(base, suite, strategies=("similar",), embed=lambda texts: [[1.0, 2.0]])
    with pytest.raises(ArgumentError, match="not a list of number vectors"):
        fewshot_candidates(base, suite, strategies=("similar",), embed=lambda texts: [["x"]] * len(texts))


def test_input_text_of_a_dict_input_names_its_variables():
    assert input_text({"subject": "Hi", "body": "ünï"}) == "subject: Hi\nbody: ünï"
    assert draw_typical([], 3, [], {}) == []


# ---- orders -----------------------------------------------------------------------------------------------------
def test_order_candidates_reorder_the_same_examples(base):
    found = order_candidates(base, n_shuffles=2, seed=3)
    assert found[0].name == "order:reversed"
    original = list(base.prompt.few_shot_examples)
    assert found[0].prompt.few_shot_examples == tuple(original[::-1])
    for candidate in found:
        assert sorted(map(repr, candidate.prompt.few_shot_examples)) == sorted(map(repr, original))
        assert candidate.prompt.few_shot_examples != tuple(original)
    assert len({c.prompt.content_hash for c in found}) == len(found)


def test_interleaving_spreads_each_labels_examples():
    examples = tuple(FewShotExample(input=f"{label}{i}", output=label) for label in "ab" for i in range(2))
    start = start_candidate(pl.Prompt(name="t", version="1", model="fake:m", few_shot_examples=examples))
    interleaved = next(c for c in order_candidates(start) if c.name == "order:interleaved")
    assert [e.output for e in interleaved.prompt.few_shot_examples] == ["a", "b", "a", "b"]
    assert order_candidates(start_candidate(pl.Prompt(name="t", version="1", model="fake:m"))) == []


# ---- bootstrapped demos ---------------------------------------------------------------------------------------
def test_bootstrap_keeps_the_pool_cases_the_model_answers_correctly(base):
    pool = labelled_pool(per_label=2)
    prompt = pl.Prompt(name="t", version="1", model="fake:m", template="{{ subject }}|{{ body }}")
    start = start_candidate(prompt)
    # the fake answers right for index 0, wrong for index 1, and fails the call for c-0
    script = {}
    for case in pool:
        label, index = case.input["subject"].split()[:2]
        text = prompt.render_user(case.input)
        script[text] = label if index == "0" else "zzz"
    script[prompt.render_user(next(c for c in pool if c.input["subject"].startswith("c 0")).input)] = \
        pl.ProviderError("boom", error_type="server_error", retryable=False)
    found = bootstrap_demos(start, pool, FakeProvider(script), progress=False, retries=0, max_error_rate=1.0)
    assert sorted(c.input["subject"] for c in found.demos) == ["a 0 ✓", "b 0 ✓"]
    assert found.calls == 6 and len(found.results.df) == 6
    built = fewshot_candidates(start, pool, ks=(2,), n_random=1, strategies=("bootstrap",), demos=found.demos)
    assert [c.name for c in built] == ["fewshot:bootstrap:k2:s0"]
    assert sorted(e.input["subject"] for e in built[0].prompt.few_shot_examples) == ["a 0 ✓", "b 0 ✓"]


def test_bootstrap_can_sample_the_pool(base):
    pool = labelled_pool(per_label=4)
    found = bootstrap_demos(start_candidate(pl.Prompt(name="t", version="1", model="fake:m",
                                                      template="{{ subject }}")),
                            pool, FakeProvider("a"), max_cases=5, progress=False)
    asked = pool.sample(5, seed=0)
    assert found.calls == 5 and set(found.results.df["case_id"]) == {case.id for case in asked}
    assert [case.id for case in found.demos] == [case.id for case in asked if case.expected == "a"]


# ---- instruction rewrites ---------------------------------------------------------------------------------------
def test_the_library_reads_the_definition_lines_of_the_prompt(prompt):
    lines = definition_lines(prompt.system, LABELS)
    assert [label for label, _ in lines.values()] == LABELS
    assert lines[1] == ("billing", "charges, prices, invoices, receipts, payment methods")


def test_every_rewrite_makes_a_different_system_text(base):
    found = instruction_candidates(base)
    assert [c.name for c in found] == [f"instruction:{name}" for name in REWRITES if name != "definitions"]
    texts = [c.prompt.system for c in found]
    assert len(set(texts)) == len(texts) and base.prompt.system not in texts
    by_name = {c.name.split(":")[1]: c.prompt.system for c in found}
    assert "- billing: charges, prices" in by_name["definitions_bulleted"]
    assert "billing: charges" not in by_name["labels_only"] and "Labels: billing, refund," in by_name["labels_only"]
    assert by_name["format_exact_word"].endswith("billing | refund | technical_issue | account_access | shipping | "
                                                 "cancellation | feature_request | other.")
    assert by_name["order_task_last"].startswith("billing: charges")
    assert by_name["order_task_last"].rstrip().endswith("Answer with exactly one label:")
    assert by_name["order_steps"].startswith("Follow these steps:")
    assert all(c.prompt.few_shot_examples == base.prompt.few_shot_examples for c in found)


def test_definitions_given_as_a_mapping_are_written_in(base):
    definitions = {label: f"means {label} — ünïcode" for label in LABELS}
    (found,) = instruction_candidates(base, definitions, rewrites=["definitions"])
    assert "refund: means refund — ünïcode" in found.prompt.system
    assert "charges, prices, invoices" not in found.prompt.system
    assert found.prompt.system.startswith("Classify the customer support ticket")


def test_a_prompt_without_definitions_still_gets_format_and_step_rewrites():
    start = start_candidate(pl.Prompt(name="t", version="1", model="fake:m", system="Classify the text.",
                                      output={"labels": ["yes", "no"]}))
    names = [c.name for c in instruction_candidates(start)]
    assert names == ["instruction:format_label_only", "instruction:format_exact_word",
                     "instruction:format_nothing_else", "instruction:order_steps"]


def test_unknown_rewrites_and_missing_labels_are_refused(base):
    with pytest.raises(ArgumentError, match="'shout'"):
        instruction_candidates(base, rewrites=["shout"])
    with pytest.raises(ArgumentError, match="need the labels"):
        instruction_candidates(start_candidate(pl.Prompt(name="t", version="1", model="fake:m")))


# ---- the LLM proposer ---------------------------------------------------------------------------------------------
FAILURES = [{"input": {"subject": "Money", "body": "I want my money back"}, "expected": "refund",
             "output": "billing", "passed": False},
            {"input": {"subject": "Hi", "body": "Where is my parcel"}, "expected": "shipping", "output": "shipping",
             "passed": True},
            {"input": {"subject": "Login", "body": "Cannot sign in"}, "expected": "account_access", "output": None,
             "passed": False}]
PROPOSALS = ("<instruction>Label the ticket. refund means money back.</instruction>\n"
             "<instruction>  Label the ticket by its main request.  </instruction>"
             "<instruction>Label the ticket. refund means money back.</instruction>")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_the_proposer_turns_one_call_into_new_instructions(base, kind):
    with FakeLLMServer(answers=PROPOSALS) as server:
        if kind == "openai":
            provider, model = OpenAIProvider(api_key="sk-test", base_url=server.openai_base_url), "openai:gpt-4o"
        else:
            provider, model = AnthropicProvider(api_key="sk-test", base_url=server.anthropic_base_url), \
                "anthropic:claude-3-5-sonnet-20241022"
        found = propose_instructions(base, FAILURES, model, n=3, providers={kind: provider},
                                     history=[("Old A", 0.5), ("Old B", 0.25)])
        (body,) = server.bodies(OPENAI_PATH if kind == "openai" else ANTHROPIC_PATH)
    assert [c.name for c in found] == ["proposer:0", "proposer:1"]
    assert [c.prompt.system for c in found] == ["Label the ticket. refund means money back.",
                                                "Label the ticket by its main request."]
    assert all(c.origin == "proposer" and c.prompt.few_shot_examples == base.prompt.few_shot_examples for c in found)
    sent = str(body)
    assert "I want my money back" in sent and "(no answer)" in sent  # the failures, a failed call included
    assert "Where is my parcel" not in sent  # a passed case is not a failure
    assert sent.index("Old B") < sent.index("Old A")  # OPRO: lowest score first
    assert "sk-test" not in sent


def test_a_failed_proposer_call_gives_no_candidates_and_no_crash(base, caplog):
    with FakeLLMServer(answers=PROPOSALS, fault_schedule=["bad_request"]) as server:
        provider = OpenAIProvider(api_key="sk-test", base_url=server.openai_base_url)
        found = propose_instructions(base, FAILURES, "openai:gpt-4o", providers={"openai": provider}, retries=0,
                                     max_error_rate=1.0)
    assert found == []
    assert "proposer call" in caplog.text and "sk-test" not in caplog.text


def test_the_proposer_reads_results_and_parses_only_tagged_text():
    assert parse_proposals("no tags here", 3) == []
    assert parse_proposals("<instruction>a</instruction><INSTRUCTION>b</INSTRUCTION><instruction> </instruction>",
                           1) == ["a"]
    rows = failure_rows(FAILURES)
    assert [row["expected"] for row in rows] == ["refund", "account_access"]
    with pytest.raises(ArgumentError, match="input and expected"):
        failure_rows([{"question": "x"}])
    with pytest.raises(ArgumentError, match="n must be"):
        propose_instructions(start_candidate(pl.Prompt(name="t", version="1", model="fake:m",
                                                       output={"labels": ["a"]})), [], "fake:m", n=0)


def test_the_proposer_takes_the_results_of_a_run(base):
    suite = pl.Suite("s", labels=["a", "b"])
    suite.add_case("first", "a")
    suite.add_case("second", "b")
    prompt = pl.Prompt(name="t", version="1", model="fake:m", output={"labels": ["a", "b"]})
    results = pl.run(suite, prompt, FakeProvider("a"), progress=False)
    seen = []

    def proposer(request):
        seen.append(request.messages[-1].content)
        return "<instruction>Answer b for second.</instruction>"

    found = propose_instructions(start_candidate(prompt), results, FakeProvider(proposer, model_name="writer"))
    assert [c.prompt.system for c in found] == ["Answer b for second."]
    assert "second" in seen[0] and "input: first" not in seen[0]


# ---- compression and routing ------------------------------------------------------------------------------------
def test_compression_rules_become_candidates(base):
    wordy = derive(base, "wordy", "instruction", "wordy",
                   system="Please note that you must classify the ticket in order to help. " + base.prompt.system)
    found = compression_candidates(wordy)
    names = [c.name for c in found]
    assert "compression:remove_filler_phrases" in names and "compression:shorten_verbose_phrases" in names
    assert names[-1] == "compression:all"
    for candidate in found:
        assert candidate.origin == "compression" and candidate.moves[0] == "wordy"
        assert len(candidate.prompt.system) < len(wordy.prompt.system)
    assert "Please note that" not in found[-1].prompt.system and "in order to" not in found[-1].prompt.system
    with pytest.raises(CompressionError):
        compression_candidates(base, ["no_such_rule"])


def test_routing_candidates_name_and_pin_other_models(base):
    found = routing_candidates(base, ["local:gemma-3-270m", "claude-3-5-sonnet-20241022", "local:gemma-3-270m",
                                      "openai:gpt-4o-mini-2024-07-18"])
    assert [c.model for c in found] == ["local:gemma-3-270m", "openai:gpt-4o-mini-2024-07-18"]
    assert all(c.prompt.model == c.model and c.origin == "routing" for c in found)
    assert found[0].prompt.system == base.prompt.system
    with pytest.raises(ArgumentError, match="list of model ids"):
        routing_candidates(base, "local:gemma-3-270m")
