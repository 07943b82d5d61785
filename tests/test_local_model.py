"""The embedded model answers real cases (needs promptlab[local]; README's test command installs it)."""

from __future__ import annotations

import asyncio
import builtins

import pytest

import promptlab as pl
from promptlab.providers import _local as local
from promptlab.providers._base import Message, Request

PROMPT = pl.Prompt(
    name="sentiment", version="1", model="claude-3-5-sonnet-20241022", max_tokens=5,
    system="Classify the sentiment of the text as positive, negative, neutral or mixed.",
    few_shot_examples=[{"input": "I love it, works perfectly!", "output": "positive"},
                       {"input": "Broke after one day. Waste of money.", "output": "negative"},
                       {"input": "It arrived on Tuesday.", "output": "neutral"}],
)


def test_transcript_is_a_plain_base_model_transcript():
    request = Request(model="gemma-3-270m", system="Be brief.",
                      messages=(Message("user", "a"), Message("assistant", "b"), Message("user", "c")))
    assert local.render_transcript(request) == "Be brief.\n\nInput: a\nOutput: b\n\nInput: c\nOutput:"


def test_local_model_answers_real_cases_with_real_token_counts():
    suite = pl.Suite("mini", labels=["positive", "negative", "neutral", "mixed"])
    suite.add_case("Absolutely fantastic, I love this blender!", "positive")
    suite.add_case("Terrible quality, it broke after a day and support ignored me.", "negative")
    results = pl.run(suite, PROMPT, pl.providers.LOCAL_MODEL_ID, progress=False, cache=False)
    df = results.df
    assert (df["model_served"] == "local:gemma-3-270m").all()
    assert (df["model_pinned"] == "claude-3-5-sonnet-20241022").all()  # the swap is recorded, not hidden
    assert df["output"].str.len().gt(0).all() and df["error_type"].isna().all()
    transcript = local.render_transcript(PROMPT.render(suite.cases[0].input, model="gemma-3-270m"))
    assert df["input_tokens"].iloc[0] == local.count_tokens(transcript)
    assert (df["cost_usd"] == 0).all() and (df["latency_s"] > 0).all()
    assert df["passed"].sum() >= 1  # a 270M base model is weak, but these two are easy


def test_greedy_decoding_is_deterministic():
    request = PROMPT.render("The battery lasts all day, great purchase.", model="gemma-3-270m")
    provider = local.LocalProvider()
    first = asyncio.run(provider.complete(request))
    again = asyncio.run(provider.complete(request))
    assert again.text == first.text and again.input_tokens == first.input_tokens


def test_plan_runs_calls_sharing_a_prefix_back_to_back():
    from promptlab.evaluation._runner import ProviderPool, plan

    suite = pl.Suite("s")
    for i in range(3):
        suite.add_case(f"text {i}", "positive")
    jobs = plan(suite, {"A": PROMPT, "B": PROMPT.with_changes(system="Other.")}, [pl.providers.LOCAL_MODEL_ID], 2,
                ProviderPool())
    prefixes = [job.request.prefix_key() for job in jobs]
    changes = sum(a != b for a, b in zip(prefixes, prefixes[1:], strict=False))
    assert changes == 1  # all of A's calls, then all of B's: the prefix changes once


def test_unknown_local_model_is_rejected():
    request = Request(model="llama-9000", system="", messages=(Message("user", "hi"),))
    with pytest.raises(pl.errors.ModelSpecError, match="local:gemma-3-270m"):
        asyncio.run(local.LocalProvider().complete(request))


def test_missing_extra_names_the_pip_command(monkeypatch):
    real_import = builtins.__import__

    def no_gemma(name, *args, **kwargs):
        if name.startswith("gemma3_270m"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gemma)
    local.model_path.cache_clear()
    try:
        with pytest.raises(pl.errors.MissingDependencyError, match=r"pip install 'promptlab\[local\]'"):
            local.model_path()
    finally:
        monkeypatch.undo()
        local.model_path.cache_clear()


@pytest.mark.parametrize(("system_info", "extra_buffers"), [
    (b"CPU : AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1 |", False),  # an AMX build: its AMX kernels crash, so off
    (b"CPU : AVX2 = 1 | REPACK = 1 |", True),                  # no AMX: llama.cpp's default (repacking) kept
])
def test_model_loads_without_amx_buffers_only_on_amx_builds(monkeypatch, system_info, extra_buffers):
    import llama_cpp
    import llama_cpp.llama_cpp as capi

    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: system_info)
    original = capi.llama_model_default_params
    with local._without_amx_buffers():
        assert capi.llama_model_default_params().use_extra_bufts is extra_buffers
    assert capi.llama_model_default_params is original  # restored after the load
    assert original().use_extra_bufts is True
