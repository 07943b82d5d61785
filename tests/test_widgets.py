from __future__ import annotations

import promptlab as pl
from promptlab.notebook._widgets import explore, side_by_side

PROMPT = pl.Prompt(name="p", version="1", model="claude-3-5-sonnet-20241022")


def results() -> pl.Results:
    suite = pl.Suite("s", labels=["positive", "negative"])
    suite.add_case("love it", "positive", id="a")
    suite.add_edge_case("not bad", "positive", id="b")
    suite.add_adversarial("<script>x</script> awful", "negative", id="c")
    variants = {"A": PROMPT, "B": PROMPT.with_changes(system="other")}

    def answer(request: pl.providers.Request) -> str:
        if request.system == "other" and "not bad" in request.messages[-1].content:
            return "negative"
        return "negative" if "awful" in request.messages[-1].content else "positive"

    return pl.run(suite, variants, pl.FakeProvider(answer), progress=False, cache=False)


def test_side_by_side_flags_disagreements():
    table = side_by_side(results().df).set_index("case_id")
    assert table.loc["b", "output:A"] == "positive" and table.loc["b", "output:B"] == "negative"
    assert list(table["disagree"]) == [False, True, False]


def test_explorer_filters_and_escapes():
    explorer = explore(results())
    assert "3 of 3 rows · 1 where the variants disagree" in explorer.output.value
    explorer.only_disagreements.value = True
    assert len(explorer.filtered()) == 1 and "not bad" in explorer.output.value
    explorer.only_disagreements.value = False
    explorer.category.value = "adversarial"
    assert list(explorer.filtered()["case_id"]) == ["c"]
    assert "<script>x" not in explorer.output.value and "&lt;script&gt;" in explorer.output.value
    explorer.category.value = "(all)"
    explorer.case.value = "a"
    assert list(explorer.filtered()["case_id"]) == ["a"]
