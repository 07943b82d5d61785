"""The dated price table: USD per 1M input and output tokens per model, a fact about models like pinning.

Shipped as package data (``promptlab/data/prices.yaml``, dated) and overridable with `set_price` or
`load_prices`. A model missing from the table has an unknown cost: None in the API and NA in results,
never 0. The local model costs 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .._yaml import load_yaml, read_text, validate
from ..errors import PriceFileError
from ._ids import canonical_model_id

PER_TOKENS = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M input and output tokens."""

    input: Decimal
    output: Decimal


class _Price(BaseModel):
    """One model's line in a price file: USD per 1M input and output tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Decimal = Field(ge=0, description="Write USD per 1M tokens, quoted to keep the digits: \"2.50\"")
    output: Decimal = Field(ge=0, description="Write USD per 1M tokens, quoted to keep the digits: \"10.00\"")


class _PriceFile(BaseModel):
    """A price file (the layout of ``promptlab/data/prices.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: dt.date | str = "unknown"
    currency: Literal["USD"] = "USD"
    unit: Literal["per_1m_tokens"] = "per_1m_tokens"
    models: dict[str, _Price]


class PriceTable:
    """Prices by canonical model id, with the date they were read."""

    def __init__(self, prices: dict[str, ModelPrice], as_of: str):
        self.prices = dict(prices)
        self.as_of = as_of

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> PriceTable:
        """Read a price table file (the bundled one when no path is given); every problem listed at once."""
        if path:
            where, text = str(path), read_text(path, PriceFileError, "price file")
        else:
            where, text = "promptlab/data/prices.yaml", files("promptlab").joinpath("data/prices.yaml").read_text()
        document = load_yaml(text, where, PriceFileError)
        data = validate(document, _PriceFile, where, PriceFileError, "price file",
                        fix="Follow the layout of promptlab/data/prices.yaml.")
        prices = {canonical_model_id(m): ModelPrice(p.input, p.output) for m, p in data.models.items()}
        return cls(prices, str(data.as_of))

    def get(self, model_id: str) -> ModelPrice | None:
        """The price of a model, or None when unknown."""
        return self.prices.get(canonical_model_id(model_id))

    def cost(self, model_id: str, input_tokens: int | None, output_tokens: int | None) -> Decimal | None:
        """USD for one call; None when the price or a token count is unknown."""
        return _cost(self.get(model_id), input_tokens, output_tokens)


def _cost(price: ModelPrice | None, input_tokens: int | None, output_tokens: int | None) -> Decimal | None:
    if price is None or input_tokens is None or output_tokens is None:
        return None
    return (price.input * input_tokens + price.output * output_tokens) / PER_TOKENS


@lru_cache(maxsize=1)
def _bundled() -> PriceTable:
    return PriceTable.from_yaml()


_overrides: dict[str, ModelPrice] = {}


def prices() -> PriceTable:
    """The table in force: the bundled one plus this session's overrides."""
    table = _bundled()
    return PriceTable({**table.prices, **_overrides}, table.as_of)


def set_price(model_id: str, input_per_1m: float | str | Decimal, output_per_1m: float | str | Decimal) -> None:
    """Override (or add) a model's price for this process, in USD per 1M tokens."""
    _overrides[canonical_model_id(model_id)] = ModelPrice(Decimal(str(input_per_1m)), Decimal(str(output_per_1m)))


def load_prices(path: str | Path) -> None:
    """Override prices from a YAML file in the bundled layout."""
    _overrides.update(PriceTable.from_yaml(path).prices)


def price_call(model_id: str, input_tokens: int | None, output_tokens: int | None) -> Decimal | None:
    """USD for one call at the prices in force; None when unknown."""
    # read the overrides, then the bundled table, rather than merging both into a new table (`prices`): the
    # runner prices every call
    model = canonical_model_id(model_id)
    return _cost(_overrides.get(model) or _bundled().prices.get(model), input_tokens, output_tokens)
