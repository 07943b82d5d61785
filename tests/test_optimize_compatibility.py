"""`test_model_compatibility`: one prompt on several models through the real OpenAI SDK against the loopback
fake server; accuracy, categories, failures and a paired comparison with the current model."""

from __future__ import annotations

import pytest
from scipy import stats as st
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

import promptlab as pl
from promptlab.errors import StatsError
from promptlab.optimize import model_compatibility, test_model_compatibility
from promptlab.optimize._compatibility import PAIRED_LABEL, as_model_variants
from promptlab.testing import FakeLLMServer, last_user_text

CURRENT, UPGRADE, CHEAP = ("openai:gpt-4o-2024-08-06", "openai:gpt-4o-2024-11-20",
                           "openai:gpt-4o-mini-2024-07-18")
SUITE = pl.load_suite("suites/sentiment.yaml")
PROMPT = pl.load_prompt("prompts/classification/sentiment.yaml").with_changes(model=CURRENT)
TRUTH = {case.input: case.expected for case in SUITE}
CATEGORY = {case.input: case.category for case in SUITE}
HAPPY_MISSES = {c.input for c in SUITE if c.category == "happy_path"}
HAPPY_MISSES = set(sorted(HAPPY_MISSES)[:2])


def _answer(body: dict) -> str:
    """The current model is always right; the upgrade fails every adversarial case; the cheap model two
    happy-path cases."""
    text, model = last_user_text(body), body["model"]
    wrong = (model == UPGRADE.split(":")[1] and CATEGORY.get(text) == "adversarial") or (
        model == CHEAP.split(":")[1] and text in HAPPY_MISSES)
    return "mixed" if wrong and TRUTH.get(text) != "mixed" else ("neutral" if wrong else TRUTH.get(text))


@pytest.fixture(scope="module")
def matrix():
    with FakeLLMServer(answers=_answer) as server, pytest.MonkeyPatch.context() as patch:
        for key, value in server.env().items():
            patch.setenv(key, value)
        yield test_model_compatibility(PROMPT, SUITE, [UPGRADE, CHEAP, CURRENT], progress=False, cache=False)


def test_matrix_rows_accuracy_and_served_ids(matrix):
    df = matrix.df
    assert df["model"].tolist() == [CURRENT, UPGRADE, CHEAP]  # the current model first
    assert df["current"].tolist() == [True, False, False]
    assert df["accuracy"].tolist() == pytest.approx([1.0, 56 / 74, 72 / 74])
    assert df["served"].tolist() == [CURRENT, UPGRADE, CHEAP]
    assert (df["regressions"].tolist(), df["fixes"].tolist()) == ([0, 18, 2], [0, 0, 0])


def test_paired_comparison_against_the_current_model(matrix):
    row = matrix.df.set_index("model")
    # 18 adversarial cases only the current model passed: b = 18, c = 0.
    # mid-p = 2·(binom.cdf(0, 18, .5) − .5·binom.pmf(0, 18, .5)) = 2**-18
    mid_p = 2 * (st.binom.cdf(0, 18, 0.5) - 0.5 * st.binom.pmf(0, 18, 0.5))
    assert row.loc[UPGRADE, "p_value"] == pytest.approx(mid_p, rel=1e-12) == pytest.approx(2 ** -18)
    # exact: statsmodels mcnemar([[56, 18], [0, 0]], exact=True).pvalue = 2**-17
    assert matrix.comparison.df.set_index("variant").loc[UPGRADE, "p_exact"] == pytest.approx(
        sm_mcnemar([[56, 18], [0, 0]], exact=True).pvalue)
    # b = 2, c = 0: mid-p = 2·(binom.cdf(0, 2, .5) − .5·binom.pmf(0, 2, .5)) = 0.25
    assert row.loc[CHEAP, "p_value"] == pytest.approx(0.25)
    # Holm over [2**-18, 0.25] → [2·2**-18, 0.25]
    assert row.loc[UPGRADE, "p_adj"] == pytest.approx(2 * 2 ** -18)
    assert row.loc[CHEAP, "p_adj"] == pytest.approx(0.25)
    assert row.loc[UPGRADE, "diff"] == pytest.approx(-18 / 74)
    assert matrix.verdicts == {UPGRADE: "worse", CHEAP: "no detectable difference"}


def test_categories_failures_and_regressions(matrix):
    cats = matrix.by_category
    assert list(cats.columns) == [CURRENT, UPGRADE, CHEAP]
    assert cats.loc["adversarial", UPGRADE] == 0.0 and cats.loc["adversarial", CURRENT] == 1.0
    assert cats.loc["happy_path", CHEAP] == pytest.approx(28 / 30)
    assert len(matrix.failures()) == 20 and len(matrix.failures(CHEAP)) == 2
    regressions = matrix.regressions(CHEAP)
    assert list(regressions.columns) == ["case_id", "category", CURRENT, CHEAP]
    assert len(regressions) == 2 and (regressions["category"] == "happy_path").all()


def test_display(matrix):
    assert repr(matrix) == (f"<CompatibilityMatrix current={CURRENT!r}: {CURRENT} 100.0%; {UPGRADE} 75.7% "
                            f"(worse); {CHEAP} 97.3% (no detectable difference)>")
    html = matrix._repr_html_()
    assert "Model compatibility — current" in html and "accuracy by category" in html and "pl-bad" in html


def test_models_become_variants_of_one_shared_label(matrix):
    relabelled = as_model_variants(matrix.results.df)
    assert set(relabelled["model"]) == {PAIRED_LABEL}
    assert set(relabelled["variant"]) == {CURRENT, UPGRADE, CHEAP}
    assert set(matrix.results.df["variant"]) == {"A"}  # the original frame is untouched


def test_current_defaults_and_checks(matrix):
    assert model_compatibility(matrix.results).current == CURRENT  # the prompt's pinned model
    assert model_compatibility(matrix.results, current=CHEAP).df["model"].iloc[0] == CHEAP
    with pytest.raises(StatsError, match=r"current model 'openai:gpt-4.1-2025-04-14' is not among the models"):
        model_compatibility(matrix.results, current="gpt-4.1-2025-04-14")
    two = pl.Results(matrix.results.df.assign(variant="B"))
    both = pl.Results.concat([matrix.results, two])
    with pytest.raises(StatsError, match=r"several variants \['A', 'B'\]; pass variant="):
        model_compatibility(both)
    assert model_compatibility(both, variant="B").df["n"].tolist() == [74, 74, 74]


def test_single_model_has_no_comparison():
    fake = pl.FakeProvider("positive")
    result = test_model_compatibility(PROMPT, SUITE, [fake], progress=False, cache=False)
    assert result.comparison is None and result.current == "fake:fake-model"
    assert result.df["verdict"].isna().all()


def test_library_function_is_not_collected_by_pytest():
    assert test_model_compatibility.__test__ is False
