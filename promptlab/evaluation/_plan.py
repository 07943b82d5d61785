"""Planning a run: the variants by name, the models (with their own params), the params grid, and every call.

``params`` shapes the requests of a run without copying prompt files: ``{"temperature": [0, 0.4, 0.8],
"max_tokens": 64}`` — a list is a dimension of the grid, a scalar a fixed override (for ``stop``, a list of
strings is one value; a list of lists is a dimension). Each grid point runs each variant with the values applied
(`Prompt.with_changes`, so ``prompt_hash`` is the hash of what really ran: rows of a point that changes nothing
keep the file's hash, and registry evidence can never credit a sweep point to the prompt file).

A model may carry its own params (`ModelConfig`: ``max_tokens`` for a reasoning model, a temperature one
model requires); they override the file's fixed params for that model, and may not set a key the grid varies.
The ``model`` column stays the canonical model id (prices and caches key on it); a model's ``label`` is a display
name kept in the run's meta.

Variant names: when a variant runs on one model at several params (grid points, or the same model listed twice
with different params), each gets the params that vary appended, keys sorted: ``"A[temperature=0.4]"``,
``"A[max_tokens=64,temperature=0]"``. Rows record their params in the ``params`` column (NA when none).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..authoring._callable import CallablePrompt
from ..authoring._prompt import Prompt
from ..authoring._suite import Case, Suite
from ..errors import RunArgumentError
from ..providers import canonical_model_id, make_provider, split_model_id
from ..providers._base import Provider, Request

PromptLike = Prompt | CallablePrompt
Variants = PromptLike | Mapping[str, PromptLike] | Iterable[PromptLike]
ModelSpec = str | Provider
# the request-shaping fields of a prompt that every provider passes on (Anthropic's newest API drops temperature;
# its provider says so), with how to write each
PARAM_KEYS = {"temperature": "a number within [0, 2]", "max_tokens": "a whole number > 0",
              "stop": "a text or a list of texts"}


@dataclass(frozen=True)
class ModelConfig:
    """A model of a run with request params of its own and a display label.

    Args:
        model: a model id (``"openai:gpt-4o-mini"``) or a `Provider`.
        params: request params for this model (keys of `PARAM_KEYS`; scalars only): they override the run's
            fixed params for this model.
        label: a display name (kept in ``meta["models"]``; the ``model`` column stays the canonical id).
    """

    model: ModelSpec
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None

    def __post_init__(self) -> None:
        bad = {key: value for key, value in dict(self.params).items()
               if key in PARAM_KEYS and _is_dimension(key, value)}
        if bad:
            raise RunArgumentError(f"model {self.model!r}: params {bad!r} hold lists; a model's params are single "
                                   "values. Sweep values with the run's params= grid, or list the model once per "
                                   "value.")
        check_values(dict(self.params), f"model {self.model!r}")


# ---- the params grid ---------------------------------------------------------------------------------------------
def _is_dimension(key: str, value: Any) -> bool:
    if key == "stop":
        return isinstance(value, list | tuple) and any(isinstance(item, list | tuple) for item in value)
    return isinstance(value, list | tuple)


def _value_problem(key: str, value: Any) -> str | None:
    if key == "temperature":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 2
    elif key == "max_tokens":
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    else:
        ok = isinstance(value, str) or (isinstance(value, list | tuple) and all(isinstance(s, str) for s in value))
    return None if ok else f"{key}={value!r} (write {PARAM_KEYS[key]})"


def check_values(params: Mapping[str, Any], where: str = "params") -> None:
    """Refuse unknown keys and bad values of single-valued params, naming them all."""
    unknown = sorted(str(key) for key in params if key not in PARAM_KEYS)
    if unknown:
        raise RunArgumentError(f"{where}: unknown param(s) {unknown!r}. Allowed: {', '.join(PARAM_KEYS)} (the "
                               "request-shaping fields every provider passes on).")
    problems = [p for key, value in params.items() if (p := _value_problem(key, value)) is not None]
    if problems:
        raise RunArgumentError(f"{where}: {'; '.join(problems)}.")


def param_grid(params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every point of the grid ``params`` describes (keys sorted; each dimension in the order given); ``[{}]``
    for no params."""
    if params is None:
        return [{}]
    if not isinstance(params, Mapping):
        raise RunArgumentError(f"params must be a mapping such as {{'temperature': [0, 0.7]}}, got {params!r}.")
    dimensions = {}
    for key in sorted(params):
        values = params[key]
        if key in PARAM_KEYS and _is_dimension(key, values):
            if not values:
                raise RunArgumentError(f"params: {key} is an empty list; give at least one value.")
            if len({json.dumps(v) for v in values}) != len(values):
                raise RunArgumentError(f"params: {key}={list(values)!r} repeats a value; list each once.")
            dimensions[key] = list(values)
        else:
            dimensions[key] = [values]
    points = [dict(zip(dimensions, combo, strict=True)) for combo in itertools.product(*dimensions.values())]
    for point in points:
        check_values(point)
    return points


def _varied_keys(params: Mapping[str, Any] | None) -> set[str]:
    return {key for key, value in (params or {}).items() if key in PARAM_KEYS and _is_dimension(key, value)}


def _format(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:g}"
    return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)


def suffixed(variant: str, params: Mapping[str, Any], keys: Iterable[str]) -> str:
    """``"A[temperature=0.4]"``: the variant's name with the params in ``keys`` (sorted) appended."""
    shown = sorted(keys)
    if not shown:
        return variant
    return f"{variant}[{','.join(f'{key}={_format(params.get(key))}' for key in shown)}]"


# ---- variants and providers ----------------------------------------------------------------------------------------
def as_variants(variants: Variants) -> dict[str, PromptLike]:
    """Name the variants: a dict keeps its names; a list is named A, B, C …; one prompt is ``A``."""
    if isinstance(variants, PromptLike):
        return {"A": variants}
    if isinstance(variants, Mapping):
        named = dict(variants)
    else:
        named = {chr(ord("A") + i): p for i, p in enumerate(variants)}
    bad = {name: type(p).__name__ for name, p in named.items() if not isinstance(p, PromptLike)}
    if bad or not named:
        raise RunArgumentError(f"variants must be Prompt objects (got {bad or 'none'!r}). "
                               "Load them with pl.load_prompt('prompts/...yaml').")
    return named


@dataclass
class ProviderPool:
    """The provider instances of a run, keyed by provider name; instances passed in are used as they are."""

    instances: dict[str, Provider] = field(default_factory=dict)
    connect: bool = True  # False: only name models (estimates need no keys and open no connections)

    def resolve(self, spec: ModelSpec) -> str:
        """Register ``spec`` and return its canonical model id.

        A `Provider` instance answers as its ``model_name`` (``default`` when it has none); to name hosted
        models through your own instance, pass ``providers={"openai": OpenAIProvider(base_url=...)}`` and
        use string ids. Two different instances may not share a provider name in one run.
        """
        if isinstance(spec, Provider):
            self._register(spec)
            return spec.model_id(getattr(spec, "model_name", "default"))
        model_id = canonical_model_id(spec)
        name, _ = split_model_id(model_id)
        if self.connect and name not in self.instances:
            self.instances[name] = make_provider(model_id)
        return model_id

    def _register(self, provider: Provider) -> None:
        known = self.instances.setdefault(provider.name, provider)
        if known is not provider:
            raise RunArgumentError(f"two different providers are both named {provider.name!r} in one run "
                                   f"({known!r} and {provider!r}). Give each its own `name` so their model ids "
                                   "differ.")

    async def aclose(self) -> None:
        """Close every provider's connections on this event loop (SDK clients are bound to their loop)."""
        for provider in self.instances.values():
            await provider.aclose()

    def for_model(self, model_id: str) -> Provider:
        """The provider that serves ``model_id``."""
        return self.instances[split_model_id(model_id)[0]]


# ---- the plan ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)  # slots: a plan holds one per call
class Job:
    """One planned call: a case, a variant's prompt (params applied), a model and a repeat index."""

    order: int
    case: Case
    variant: str
    prompt: PromptLike
    model_id: str
    repeat: int
    params: dict | None = None

    @property
    def request(self) -> Request:
        """The rendered request, rendered anew at each access: a plan holds no requests, so a 100,000-call run
        does not keep 100,000 of them (`plan` renders each once up front, to surface template errors)."""
        return self.prompt.render(self.case.input, model=split_model_id(self.model_id)[1])


@dataclass(frozen=True)
class _Arm:
    """One variant on one model at one set of params: what a block of jobs shares."""

    variant: str
    model_id: str
    params: dict
    prompt: PromptLike


def _arms(variants: dict[str, PromptLike], models: list[ModelSpec | ModelConfig | None], grid: list[dict],
          varied: set[str], pool: ProviderPool) -> list[_Arm]:
    raw: list[tuple[str, str, dict, PromptLike]] = []
    for spec in models:
        config = spec if isinstance(spec, ModelConfig) else ModelConfig(spec) if spec is not None else None
        clash = sorted(varied & set(config.params)) if config else []
        if clash:
            raise RunArgumentError(f"model {config.model!r} sets {clash!r}, which the params grid varies; set it in "
                                   "one place.")
        for variant, prompt in variants.items():
            model_id = pool.resolve(config.model if config else prompt.model)
            for point in grid:
                effective = {**point, **(dict(config.params) if config else {})}
                raw.append((variant, model_id, effective, prompt))
    return _named_arms(raw)


def _named_arms(raw: list[tuple[str, str, dict, PromptLike]]) -> list[_Arm]:
    """Name each arm: a variant that runs on one model at several params gets the params that vary appended."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for variant, model_id, params, _ in raw:
        groups.setdefault((model_id, variant), []).append(params)
    shown: dict[str, set[str]] = {}  # per model: the keys that vary for some variant on it
    for (model_id, _variant), sets in groups.items():
        keys = {key for p in sets for key in p}
        shown.setdefault(model_id, set()).update(
            key for key in keys if len({json.dumps(p.get(key), default=list) for p in sets}) > 1)
    arms, seen, prompts = [], set(), {}
    for variant, model_id, params, prompt in raw:
        name = suffixed(variant, params, shown[model_id])
        if (name, model_id) in seen:
            raise RunArgumentError(f"variant {variant!r} would run twice on {model_id!r} with the same params "
                                   f"{params!r}: a model is listed twice alike. List it once, or give each its own "
                                   "params.")
        seen.add((name, model_id))
        key = (variant, json.dumps(params, sort_keys=True, default=list))
        if key not in prompts:
            prompts[key] = prompt.with_changes(**params) if params else prompt
        arms.append(_Arm(name, model_id, params, prompts[key]))
    return arms


def plan(suite: Suite, variants: dict[str, PromptLike], models: list[ModelSpec | ModelConfig | None], repeats: int,
         pool: ProviderPool, params: Mapping[str, Any] | None = None) -> list[Job]:
    """Every job in execution order (by model, then variant, then repeat, then case); renders every request once
    so template errors surface before any call (the requests are rendered again when sent, not kept)."""
    arms = _arms(variants, models, param_grid(params), _varied_keys(params), pool)
    jobs: list[Job] = []
    for model_id in dict.fromkeys(arm.model_id for arm in arms):
        for arm in (a for a in arms if a.model_id == model_id):
            for repeat in range(repeats):
                for case in suite:
                    job = Job(len(jobs), case, arm.variant, arm.prompt, model_id, repeat, dict(arm.params) or None)
                    job.request  # noqa: B018 - rendered to check it (a template error stops the run here), not kept
                    jobs.append(job)
    return jobs


def check_suite(suite: Suite) -> None:
    """Refuse what is not a suite, or a suite with no cases."""
    if not isinstance(suite, Suite):
        raise RunArgumentError(f"suite must be a Suite, got {type(suite).__name__}. Load one with pl.load_suite(path).")
    if len(suite) == 0:
        raise RunArgumentError(f"suite {suite.name!r} has no cases; nothing to run. Add cases or check your filter.")


def as_model_list(model: ModelSpec | ModelConfig | Iterable[ModelSpec | ModelConfig] | None) -> list:
    """The models of a run as a list (None: each prompt's own pin)."""
    if model is None or isinstance(model, str | Provider | ModelConfig):
        return [model]
    return list(model)


def models_meta(models: list) -> list[dict] | None:
    """The run's models as given, for ``meta["models"]``: id, label, params (None when no model carries any)."""
    configs = [m for m in models if isinstance(m, ModelConfig)]
    if not configs:
        return None
    return [{"model": m.model if isinstance(m.model, str) else repr(m.model), "label": m.label,
             "params": dict(m.params)} for m in configs]
