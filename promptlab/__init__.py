"""promptlab: production prompt engineering in Jupyter.

``import promptlab as pl`` gives the notebook surface: load prompts and suites, run them on a model,
read the results, compare variants with paired statistics.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .cache import ResponseCache
from .cost import Budget, count_tokens, load_prices, prices, set_price
from .errors import (
    MissingAPIKeyError,
    MissingDependencyError,
    MissingVariablesError,
    ModelSpecError,
    PromptFileError,
    PromptlabError,
    ProviderError,
    RenderError,
    RunError,
    SuiteFileError,
)
from .prompt import Prompt, load_prompt
from .providers import Completion, FakeProvider, Message, Provider, Request
from .providers.local import LOCAL_MODEL_ID
from .results import COLUMNS, Results
from .runner import arun, estimate, run
from .scoring import AnyOf, Contains, ExactMatch, JsonSchema, JsonValid, Numeric, Regex, Score
from .suite import Case, Suite, load_suite

__all__ = [
    "AnyOf",
    "Budget",
    "COLUMNS",
    "Case",
    "Completion",
    "Contains",
    "ExactMatch",
    "FakeProvider",
    "JsonSchema",
    "JsonValid",
    "LOCAL_MODEL_ID",
    "Message",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "MissingVariablesError",
    "ModelSpecError",
    "Numeric",
    "Prompt",
    "PromptFileError",
    "PromptlabError",
    "Provider",
    "ProviderError",
    "Regex",
    "RenderError",
    "Request",
    "ResponseCache",
    "Results",
    "RunError",
    "Score",
    "Suite",
    "SuiteFileError",
    "__version__",
    "arun",
    "count_tokens",
    "estimate",
    "load_prices",
    "load_prompt",
    "load_suite",
    "prices",
    "run",
    "set_price",
]
