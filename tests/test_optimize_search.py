"""The prompt search (`pl.optimize_prompt`): the split, successive halving, the budget, the untouched confirmation
cases, the report's numbers and the export the registry's gates read. FakeProvider-based: every answer is scripted
from the prompt's system text, so which candidate is best is known in advance."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

import promptlab as pl
from promptlab.errors import ArgumentError
from promptlab.optimize._candidates import Candidate, derive
from promptlab.optimize._search import optimize_prompt
from promptlab.optimize._search_race import rung_sizes
from promptlab.optimize._search_split import split_suite, with_prompt_examples

LABELS = ["alpha", "beta", "gamma", "delta"]


def make_suite(n_per_stratum: int = 5, categories=("happy_path", "edge_case")) -> pl.Suite:
    suite = pl.Suite("toy", labels=LABELS)
    i = 0
    for label in LABELS:
        for category in categories:
            for _ in range(n_per_stratum):
                i += 1
                suite.add_case(f"ticket number {i} about {label}", label, category)
    return suite


SUITE = make_suite()
EXPECTED = {case.input: case.expected for case in SUITE}
START = pl.Prompt(name="toy", version="1.0.0", model="fake:fake-model", system="Classify. QUALITY=0",
                  template="{{ input }}", max_tokens=4,
                  few_shot_examples=[{"input": "an example", "output": "alpha"}],
                  changelog=[{"version": "1.0.0", "date": "2024-01-02", "author": "ana", "changes": "First."}])


def quality(system: str) -> int:
    """The scripted skill of a prompt: the number after QUALITY= (0..10): it answers right on cases whose number
    modulo 10 is below it."""
    return int(system.split("QUALITY=")[1].split()[0])


def answer(request) -> str:
    text = request.messages[-1].content
    if text not in EXPECTED:
        return "alpha"
    number = int(text.split()[2])
    right = EXPECTED[text]
    return right if number % 10 < quality(request.system) else next(lab for lab in LABELS if lab != right)


def provider() -> pl.FakeProvider:
    return pl.FakeProvider(answer)


def quality_stage(levels):
    """A stage generating one candidate per quality level (the generator interface: base, context -> list)."""
    def stage(base: Candidate, ctx) -> list[Candidate]:
        return [derive(base, f"q{q}", "instruction", f"quality {q}",
                       system=base.prompt.system.split("QUALITY=")[0] + f"QUALITY={q}") for q in levels]

    stage.__name__ = "quality"
    return stage


# ---- the split ----------------------------------------------------------------------------------------------------
def test_split_is_stratified_by_label_and_category_and_seeded():
    suite = make_suite(n_per_stratum=6)  # 48 cases, 8 strata of 6
    parts = split_suite(suite, confirm_share=0.5, pool_share=0.25, seed=3)
    ids = parts.ids()
    assert sorted(ids["pool"] + ids["search"] + ids["confirm"]) == sorted(c.id for c in suite)  # a partition
    assert not set(ids["confirm"]) & (set(ids["search"]) | set(ids["pool"]))
    assert parts.sizes() == {"pool": 12, "search": 18, "confirm": 18}
    for part, share in ((parts.pool, 0.25), (parts.search, 0.375), (parts.confirm, 0.375)):
        strata = Counter((c.expected, c.category) for c in part)
        for label in LABELS:
            for category in ("happy_path", "edge_case"):
                assert abs(strata[(label, category)] - 6 * share) < 1.0 + 1e-9, (part, label, category)
    again = split_suite(suite, confirm_share=0.5, pool_share=0.25, seed=3)
    assert again.ids() == ids
    assert split_suite(suite, confirm_share=0.5, pool_share=0.25, seed=4).ids() != ids


def test_split_with_uneven_strata_keeps_every_label_in_search_and_confirmation():
    suite = pl.Suite("uneven", labels=LABELS)
    for i in range(30):
        suite.add_case(f"case {i}", LABELS[i % 4] if i < 24 else "delta", "edge_case" if i % 3 else "happy_path")
    parts = split_suite(suite, confirm_share=0.5, pool_share=0.2, seed=0)
    for part in (parts.search, parts.confirm):
        assert {c.expected for c in part} == set(LABELS)
    totals = Counter(c.expected for c in suite)
    for label, total in totals.items():
        got = Counter(c.expected for c in parts.confirm)[label]
        assert abs(got - total * 0.4) <= 1.0


def test_split_with_a_pool_refuses_overlap_and_rejects_bad_shares():
    pool = pl.Suite("pool", labels=LABELS)
    pool.add_case("a separate example", "beta")
    parts = split_suite(SUITE, pool=pool, confirm_share=0.5, seed=0)
    assert parts.sizes() == {"pool": 1, "search": 20, "confirm": 20}
    overlapping = pl.Suite("pool", labels=LABELS)
    overlapping.add_case(SUITE.cases[0].input, SUITE.cases[0].expected)
    with pytest.raises(ArgumentError, match="shares 1 case"):
        split_suite(SUITE, pool=overlapping)
    with pytest.raises(ArgumentError, match="confirm_share"):
        split_suite(SUITE, confirm_share=1.0)
    tiny = pl.Suite("tiny", labels=LABELS)
    tiny.add_case("one", "alpha")
    tiny.add_case("two", "beta")
    with pytest.raises(ArgumentError, match="too few"):
        split_suite(tiny)


def test_the_pool_gets_the_prompts_own_examples():
    parts = split_suite(SUITE, seed=0)
    pool = with_prompt_examples(parts.pool, START)
    assert len(pool) == len(parts.pool) + 1
    assert pool["example-1"].expected == "alpha"


def test_rung_sizes_end_on_every_search_case_and_grow_by_eta():
    assert rung_sizes(1, 20, 2, 4) == [20]
    assert rung_sizes(8, 40, 2, 4) == [5, 10, 20, 40]
    assert rung_sizes(9, 27, 3, 2) == [3, 9, 27]
    assert rung_sizes(64, 10, 2, 4) == [4, 5, 10]


# ---- the race -----------------------------------------------------------------------------------------------------
def test_halving_keeps_the_best_and_drops_the_rest_early():
    fake = provider()
    result = optimize_prompt(START, SUITE, fake, moves=[quality_stage([2, 9, 5, 1, 7, 3, 0])], seed=1,
                             progress=False, cache=False, pool_share=0.2)
    assert result.winner.name == "q9"
    tried = result.tried()
    by_name = tried.set_index("candidate")
    full = len(result.split.search)
    assert by_name.loc["q9", "cases"] == full and bool(by_name.loc["q9", "stage_winner"])
    assert "q0" not in by_name.index  # the same prompt as the start: not raced twice
    assert by_name.loc["start", "cases"] == full  # the incumbent runs every rung: a move must beat it on all cases
    assert by_name.loc["q1", "cases"] < full and by_name.loc["q2", "cases"] < full  # dropped at an early rung
    assert by_name.loc["q9", "calls"] == full  # asked each search case once
    # the search score is the winner's accuracy on the search cases it answered, recomputed here from the rows
    search = result.search_score
    rows = [row for frame in result.search_rows for row in frame.to_dict("records") if row["variant"] == "q9"]
    assert search["n"] == full and search["accuracy"] == pytest.approx(sum(r["passed"] for r in rows) / len(rows))
    assert search["optimistic"] is True


def test_a_tie_goes_to_the_incumbent():
    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([0])], progress=False, cache=False)
    assert result.winner.name == "start" and not result.improved
    assert "no candidate beat the starting prompt" in result.verdict()
    assert result.comparison is None
    assert set(result.confirmation.df["variant"]) == {"start"}


def test_stages_compose_on_the_incumbent():
    def second(base: Candidate, ctx) -> list[Candidate]:
        return [derive(base, "plus-example", "fewshot", "drop the example", few_shot_examples=())]

    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([3, 8]), second], progress=False,
                             cache=False)
    # the second stage starts from the first stage's winner: its candidate carries both moves
    second_rows = result.tried().query("stage == 'second'")
    assert set(second_rows["candidate"]) == {"q8", "plus-example"}
    moves = second_rows.set_index("candidate").loc["plus-example", "moves"]
    assert moves == "quality 8 → drop the example"


def test_confirmation_cases_are_never_seen_during_the_search():
    fake = provider()
    result = optimize_prompt(START, SUITE, fake, moves=[quality_stage([2, 9, 5, 7])], progress=False, cache=False)
    confirm_inputs = {c.input for c in result.split.confirm}
    pool_inputs = {c.input for c in result.split.pool}
    n_confirm = len(result.split.confirm)
    asked = [req.messages[-1].content for req in fake.calls]
    # the confirmation is the last 2 × n_confirm calls (start and winner), and no earlier call touched those cases
    assert all(text not in confirm_inputs for text in asked[:-2 * n_confirm])
    assert Counter(text for text in asked[-2 * n_confirm:]) == Counter({text: 2 for text in confirm_inputs})
    assert not any(text in pool_inputs for text in asked)  # pool cases are examples, never scored
    searched = {cid for frame in result.search_rows for cid in frame["case_id"]}
    assert searched <= {c.id for c in result.split.search}
    assert set(result.confirmation.df["case_id"]) == {c.id for c in result.split.confirm}


def test_confirmation_paired_test_matches_statsmodels_mcnemar():
    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([9])], progress=False, cache=False)
    df = result.confirmation.df
    start = df[df["variant"] == "start"].set_index("case_id")["passed"].astype(bool)
    win = df[df["variant"] == "q9"].set_index("case_id")["passed"].astype(bool).reindex(start.index)
    b, c = int((start & ~win).sum()), int((~start & win).sum())
    test = result.record()["confirmation"]["paired_test"]
    assert (test["b"], test["c"]) == (b, c)
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    table = [[int((start & win).sum()), b], [c, int((~start & ~win).sum())]]
    # statsmodels.stats.contingency_tables.mcnemar(table, exact=True).pvalue is the exact binomial p
    assert test["p_exact"] == pytest.approx(sm_mcnemar(table, exact=True).pvalue)
    arms = result.record()["confirmation"]["arms"]
    from scipy.stats import binomtest

    # Wilson interval: scipy.stats.binomtest(k, n).proportion_ci(method="wilson")
    ci = binomtest(arms["q9"]["passed"], arms["q9"]["n"]).proportion_ci(method="wilson")
    assert (arms["q9"]["ci_low"], arms["q9"]["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert test["verdict"] == "better" and "real" in result.verdict()


def test_the_default_moves_run_the_real_generators_and_count_every_call():
    def likes_examples(request):  # right only when shown at least four examples (the start shows one)
        text = request.messages[-1].content
        shown = (len(request.messages) - 1) // 2
        return EXPECTED.get(text, "alpha") if shown >= 4 else "nonsense"

    fake = pl.FakeProvider(likes_examples)
    result = optimize_prompt(START, SUITE, fake, progress=False, cache=False, seed=0,
                             move_options={"fewshot": {"ks": (2, 4), "n_random": 1}})
    stages = set(result.tried()["stage"])
    assert {"instruction", "fewshot"} <= stages and "proposer" not in stages  # no proposer model: skipped
    assert len(result.winner.prompt.few_shot_examples) == 4 and result.winner.origin == "fewshot"
    assert len(fake.calls) == result.spend.calls  # bootstrapped demos are counted too
    pool_inputs = {c.input for c in result.split.pool}
    assert any(req.messages[-1].content in pool_inputs for req in fake.calls)  # the bootstrap asked pool cases
    assert result.record()["confirmation"]["paired_test"]["verdict"] == "better"


# ---- the budget ---------------------------------------------------------------------------------------------------
def test_a_call_budget_stops_the_search_and_keeps_the_confirmation():
    fake = provider()
    result = optimize_prompt(START, SUITE, fake, moves=[quality_stage(range(11))], budget=70, progress=False,
                             cache=False, min_cases=4)
    n_confirm = len(result.split.confirm)
    assert len(fake.calls) == result.spend.calls <= 70
    assert result.spend.stopped and "budget" in result.spend.stopped
    assert len(result.confirmation.df) == 2 * n_confirm or not result.improved
    assert result.calls()["made"] == len(fake.calls)


def test_a_budget_too_small_for_the_confirmation_is_refused():
    with pytest.raises(ArgumentError, match="cannot pay for the confirmation"):
        optimize_prompt(START, SUITE, provider(), moves=[quality_stage([9])], budget=10, progress=False)
    with pytest.raises(ArgumentError, match="number of calls"):
        optimize_prompt(START, SUITE, provider(), moves=[quality_stage([9])], budget=2.5, progress=False)


def test_a_dollar_budget_is_kept_with_the_confirmation_reserved():
    pl.evaluation.set_price("fake:fake-model", 1000, 1000)  # USD per 1M tokens: a call costs about a cent
    try:
        with pytest.raises(ArgumentError, match="cannot pay for the confirmation"):
            optimize_prompt(START, SUITE, provider(), moves=[quality_stage([9])], budget=pl.Budget(usd=0.5),
                            progress=False, cache=False)
        budget = pl.Budget(usd=3.0)
        result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage(range(11))], budget=budget,
                                 progress=False, cache=False)
        assert budget.spent <= budget.usd
        assert result.spend.stopped and "budget" in result.spend.stopped
        assert float(result.spend.usd) == pytest.approx(float(budget.spent))
        assert result.confirmation.df["error_type"].isna().all()  # the confirmation was paid for in full
    finally:
        from promptlab.providers import _prices

        _prices._overrides.pop("fake:fake-model", None)


def test_the_cache_is_shared_across_candidates_and_searches():
    cache = pl.ResponseCache()
    first = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([4, 9])], progress=False, cache=cache)
    again = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([4, 9])], progress=False, cache=cache)
    assert first.spend.calls > 0 and again.spend.calls == 0
    assert again.spend.cached == first.spend.calls and again.winner.name == first.winner.name


def test_progress_reports_the_best_so_far():
    events = []
    optimize_prompt(START, SUITE, provider(), moves=[quality_stage([1, 9, 3])], progress=events.append, cache=False)
    assert events and events[-1]["best"]["candidate"] == "q9"
    assert [e["rung"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["calls"] >= 0 and not math.isnan(e["best"]["accuracy"]) for e in events)


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ArgumentError, match="unknown search move 'magic'"):
        optimize_prompt(START, SUITE, provider(), moves=["magic"], progress=False)
    with pytest.raises(ArgumentError, match="eta"):
        optimize_prompt(START, SUITE, provider(), moves=[quality_stage([1])], eta=1, progress=False)
    with pytest.raises(ArgumentError, match="Prompt"):
        optimize_prompt("prompt.yaml", SUITE, provider(), progress=False)


def test_failed_calls_are_rows_that_count_as_failures_not_crashes():
    def flaky(request):
        if "QUALITY=9" in request.system and request.messages[-1].content.endswith("beta"):
            raise pl.ProviderError("boom", error_type="server_error", retryable=False)
        return answer(request)

    result = optimize_prompt(START, SUITE, pl.FakeProvider(flaky), moves=[quality_stage([9])], progress=False,
                             cache=False, retries=0)
    errors = result.confirmation.df.query("variant == 'q9'")["error_type"].notna().sum()
    assert errors > 0
    arms = result.record()["confirmation"]["arms"]
    assert arms["q9"]["passed"] < arms["q9"]["n"]


# ---- the report and the export ------------------------------------------------------------------------------------
def test_report_says_the_search_score_is_optimistic_and_shows_what_was_tried():
    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([2, 9])], progress=False, cache=False)
    md = result.to_markdown()
    assert "optimistic" in md and "q9" in md and "confirmation" in md
    html = result._repr_html_()
    assert "optimistic" in html and "q9" in html
    record = json.loads(json.dumps(result.record()))
    assert record["search_score"]["optimistic"] is True
    assert record["split"]["confirm_ids"] == [c.id for c in result.split.confirm]
    assert record["tried"]["candidates"] == 3
    fig = result.plot_racing()
    assert {trace.name for trace in fig.data} == {"start", "q2", "q9"}


def test_export_to_a_folder_writes_the_winner_and_its_record(tmp_path):
    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([9])], progress=False, cache=False)
    path = result.export(tmp_path / "out")
    again = pl.load_prompt(path)
    assert again.content_hash == result.winner.prompt.content_hash
    record = json.loads(path.with_name(path.stem + ".search.json").read_text())
    assert record["winner"]["hash"] == again.content_hash


def test_export_to_a_registry_attaches_the_search_record_the_gates_read(tmp_path):
    (tmp_path / "reg").mkdir()
    registry = pl.Registry(tmp_path / "reg")
    registry.register(START, group="toy")
    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([9])], progress=False, cache=False)
    exported = registry.export(result.winner.prompt, result.evidence())  # the same path result.export takes
    records = registry.evidence(exported.ref)
    assert records[-1].search["confirmation"]["paired_test"]["verdict"] == "better"
    assert records[-1].comparison[0].verdict == "better"
    gate = registry.gate(exported.ref, "test")
    assert gate.details.search["winner"]["hash"] == exported.content_hash  # what the test gate read
    assert gate.details.eval.cases == len(result.split.confirm)  # judged on the confirmation cases alone


def test_export_of_an_unproven_winner_needs_an_override(tmp_path):
    (tmp_path / "reg").mkdir()
    registry = pl.Registry(tmp_path / "reg")
    registry.register(START, group="toy")
    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([1])], progress=False, cache=False,
                             seed=2)
    assert result.improved  # q1 is right on a tenth of the cases, the start on none
    with pytest.raises(pl.GateRefused):
        result.export(registry)
    exported = result.export(registry, override="exploring: the confirmation is small")
    assert registry.evidence(exported.ref)[-1].search is not None


def test_a_search_record_of_another_version_is_refused(tmp_path):
    from promptlab.errors import EvidenceError

    (tmp_path / "reg").mkdir()
    registry = pl.Registry(tmp_path / "reg")
    registry.register(START, group="toy")
    result = optimize_prompt(START, SUITE, provider(), moves=[quality_stage([9])], progress=False, cache=False)
    evidence = result.evidence()
    evidence.meta["search"] = {**evidence.meta["search"], "winner": {"hash": "0" * 16, "ref": "toy@9"}}
    with pytest.raises(EvidenceError, match="search record found"):
        registry.export(result.winner.prompt, evidence)


# ---- the real thing, small ----------------------------------------------------------------------------------------
@pytest.mark.local_model
def test_a_small_search_on_the_bundled_support_suite_with_the_local_model(root):
    prompt = pl.load_prompt(root / "prompts/support/ticket_intent.yaml")
    suite = pl.load_suite(root / "suites/support_tickets.yaml").sample(24, seed=0)
    events = []
    result = pl.optimize_prompt(prompt, suite, pl.providers.LOCAL_MODEL_ID, budget=60, seed=0, moves=("instruction",),
                                move_options={"instruction": {"rewrites": ("labels_only",)}}, progress=events.append)
    assert result.spend.calls <= 60 and events  # about 32 calls: 24 cases split 6 pool / 9 search / 9 confirmation
    searched = {cid for frame in result.search_rows for cid in frame["case_id"]}
    assert searched and not searched & {c.id for c in result.split.confirm}
    record = json.loads(json.dumps(result.record()))
    arms = record["confirmation"]["arms"]
    assert arms["start"]["n"] == len(result.split.confirm)
    assert all(0 <= arm["accuracy"] <= 1 for arm in arms.values())
    assert (record["confirmation"]["paired_test"] is not None) == result.improved


# ---- the command --------------------------------------------------------------------------------------------------
def test_the_cli_prints_the_report_writes_the_record_and_gates_on_require_better(tmp_path, monkeypatch, capsys):
    from promptlab.cli import main
    from promptlab.optimize import _search
    from promptlab.providers import _ids

    class ScriptedProvider(pl.FakeProvider):  # what a model id "fake:..." builds in this test
        def __init__(self, **_):
            super().__init__(answer)

    monkeypatch.setattr(_ids, "_PROVIDER_CLASSES", {**_ids._PROVIDER_CLASSES,
                                                    "fake": (__name__, "ScriptedProvider")})
    monkeypatch.setitem(globals(), "ScriptedProvider", ScriptedProvider)
    monkeypatch.setitem(_search.STAGES, "quality", quality_stage([3, 9]))
    prompt_file, suite_file = START.save(tmp_path / "toy.yaml"), SUITE.save(tmp_path / "toy_suite.yaml")
    out = tmp_path / "search.json"
    code = main(["optimize", str(prompt_file), str(suite_file), "--model", "fake:fake-model", "--moves", "quality",
                 "--budget-calls", "300", "--out", str(out), "--export", str(tmp_path / "winner"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "optimistic" in printed and "q9" in printed
    record = json.loads(out.read_text())
    assert record["winner"]["name"] == "q9" and record["calls"]["made"] <= 300
    assert list((tmp_path / "winner").glob("*.search.json"))
    monkeypatch.setitem(_search.STAGES, "quality", quality_stage([0]))  # nothing beats the start
    code = main(["optimize", str(prompt_file), str(suite_file), "--model", "fake:fake-model", "--moves", "quality",
                 "--json", "--require-better", "--quiet"])
    assert code == 1 and json.loads(capsys.readouterr().out)["winner"]["name"] == "start"
    code = main(["optimize", str(prompt_file), str(suite_file), "--model", "fake:fake-model", "--moves", "magic"])
    assert code == 2 and "unknown search move" in capsys.readouterr().err
