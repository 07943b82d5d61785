"""The eval file: one YAML file (``promptlab.yaml`` by convention) that describes a whole evaluation.

::

    description: Support routing, two prompts × a temperature sweep
    prompts:                              # a path, or {id, file} | {id, text, system?, model?} | {id, python, ...}
      - prompts/router.yaml               # its id is the prompt's name
      - {id: terse, file: prompts/terse.yaml}
      - {id: inline, text: "Classify: {{ input }}", system: "Answer with one label."}
      - {id: built, python: "my_prompts:build"}   # fn(vars: dict) -> str | list of {role, content}
    models:                               # optional (default: each prompt's pin); id or {id, label, params, base_url}
      - local:gemma-3-270m
      - {id: openai:gpt-4o-mini, label: mini, params: {max_tokens: 32}, base_url: http://localhost:8000/v1}
    params: {temperature: [0, 0.4, 0.8]}  # the runner's grid: a list is a dimension, a scalar a fixed value
    suite: suites/tickets.yaml            # or {path, input, expected, ...}: the keyword arguments of load_suite
    scorer: exact                         # a scorer spec (default: exact, reading the suite's labels)
    transform: {regex: "Label: (\\w+)"}   # or {json_path: "$.label"} or {python: "mod:fn"}
    repeats: 1
    concurrency: 4
    sample: null                          # run a seeded sample of N cases
    seed: 0
    baseline: terse                       # the variant the others are compared with (default: the first prompt)
    thresholds: {accuracy: 0.7, error_rate: 0.1}   # each variant × model must meet all (also macro_f1, micro_f1, kappa)
    report: reports/support.html

Paths are relative to the file's folder, and python ``module:function`` references are imported with that folder
first on ``sys.path``. The file is read with the one strict reader (`promptlab._yaml`) and every problem — of the
file itself, and of the prompt files, suite and python code it names — is listed in one `EvalFileError`, each
with its line and a "did you mean" for a misspelt key.

Models and their params. The ``model`` column of the results stays the canonical model id (prices, caches and
registry evidence key on it), so a model's ``label`` is only a display name (kept in ``results.meta["models"]``)
and its ``params`` are request params applied to its rows (recorded in the ``params`` column, overriding the
file's fixed ``params`` for that model; a model may not set a key the grid varies). One model id may be listed
twice with different params (promptfoo's way to sweep a temperature): its rows then carry the varying params in
the variant's name (``router[temperature=0.7]``), exactly as a grid does. ``base_url`` points a hosted model's
provider at another endpoint; models of one provider share one endpoint.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._yaml import Problem, check, did_you_mean, key_line, load_yaml, read_text, report, require_mapping
from ..authoring._callable import CallablePrompt, import_callable
from ..authoring._labels import scorer_spec_problems
from ..authoring._prompt import Prompt, load_prompt
from ..authoring._suite import Suite, load_suite
from ..errors import EvalFileError, UsageError
from ..providers import canonical_model_id, split_model_id
from ._evalspec import THRESHOLDS, EvalSpec
from ._plan import ModelConfig, PromptLike, check_values
from ._scorer_specs import CaseScorers, build_scorer
from ._transforms import as_transform

_WHAT = "eval file"
_FIX = "The eval file format is described in promptlab.evaluation._evalfile (and examples/promptlab.yaml)."


class _EvalFile(BaseModel):
    """The top level of an eval file; prompts, models and the suite are checked entry by entry."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    prompts: list[Any] = Field(min_length=1, description="List prompt files, or {id, text} / {id, python} entries")
    models: list[Any] | None = Field(None, description="List model ids, or {id, label, params, base_url} entries")
    params: dict[str, Any] | None = Field(None, description="Write a mapping such as {temperature: [0, 0.7]}")
    suite: str | dict[str, Any] = Field(description="Write the suite's path, or {path: ..., input: ...}")
    scorer: Any = None
    transform: dict[str, Any] | None = Field(None, description="Write {regex: ...}, {json_path: ...} or "
                                                               "{python: module:function}")
    repeats: int = Field(1, ge=1)
    concurrency: int | None = Field(None, ge=1)
    sample: int | None = Field(None, ge=1)
    seed: int = 0
    baseline: str | None = None
    thresholds: dict[str, float] = Field(default_factory=dict, description="Write {accuracy: 0.7, error_rate: 0.1}")
    report: str | None = None


class _PromptEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    file: str | None = None
    text: str | None = None
    python: str | None = None
    system: str | None = None
    model: str | None = None
    version: str | None = None


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = None


class _SuiteEntry(BaseModel):
    model_config = ConfigDict(extra="allow")  # the other keys are load_suite's keyword arguments, checked there

    path: str = Field(min_length=1)


class _Reader:
    """Reads one eval file, gathering every problem (with its line) before raising them together."""

    def __init__(self, path: Path, document: Any):
        self.path, self.document, self.folder = path, document, path.parent
        self.problems: list[Problem] = []

    def add(self, where: tuple[str | int, ...], text: str, field: str | None = None) -> None:
        label = field if field is not None else ".".join(map(str, where))
        self.problems.append(Problem(key_line(self.document.node, *where), label, text))

    def attempt(self, where: tuple[str | int, ...], load: Any) -> Any:
        """``load()``, or None with its error recorded as a problem at ``where`` (errors users can fix)."""
        try:
            return load()
        except UsageError as exc:
            self.add(where, str(exc))
            return None

    def entries(self, key: str, items: list[Any], model: type[BaseModel]) -> list[tuple[int, Any]]:
        """Each entry of a list, a text kept as it is and a mapping checked as ``model`` (problems recorded)."""
        found = []
        for number, item in enumerate(items):
            if isinstance(item, str):
                found.append((number, item))
                continue
            value, problems = check(model, item, self.document.node, prefix=(key, number))
            self.problems += [Problem(p.line, f"{key}.{number}.{p.field}" if p.field else f"{key}.{number}", p.text)
                              for p in problems]
            if value is not None:
                found.append((number, value))
        return found


# ---- prompts --------------------------------------------------------------------------------------------------------
def _prompts(reader: _Reader, items: list[Any], models: list[ModelConfig] | None) -> dict[str, PromptLike]:
    default_model = next((m.model for m in models or [] if isinstance(m.model, str)), None)
    variants: dict[str, PromptLike] = {}
    for number, entry in reader.entries("prompts", items, _PromptEntry):
        where = ("prompts", number)
        prompt = _prompt(reader, where, entry, default_model)
        if prompt is None:
            continue
        name = entry.id if isinstance(entry, _PromptEntry) else prompt.name
        if name in variants:
            reader.add(where, f"two prompts have the id {name!r}. Give each its own: {{id: other, file: ...}}.")
            continue
        variants[name] = prompt
    return variants


def _prompt(reader: _Reader, where: tuple, entry: Any, default_model: str | None) -> PromptLike | None:
    if isinstance(entry, str):
        return reader.attempt(where, lambda: load_prompt(reader.folder / entry))
    sources = [key for key in ("file", "text", "python") if getattr(entry, key) is not None]
    if len(sources) != 1:
        reader.add(where, f"prompt {entry.id!r} needs exactly one of file, text or python (got "
                          f"{sources or 'none'}).")
        return None
    if entry.file is not None:
        stray = [key for key in ("system", "model", "version") if getattr(entry, key) is not None]
        if stray:
            reader.add(where, f"prompt {entry.id!r}: {stray} come from the prompt file; set them there.")
        return reader.attempt(where, lambda: load_prompt(reader.folder / entry.file))
    model = entry.model or default_model
    if model is None:
        reader.add(where, f"prompt {entry.id!r} names no model and the file lists no `models:`. Add `model:` to "
                          "the prompt, or a `models:` list.")
        return None
    if entry.python is not None:
        return reader.attempt(where, lambda: CallablePrompt(
            entry.id, import_callable(entry.python, base_dir=reader.folder, error=EvalFileError,
                                      what=f"prompt {entry.id!r}"),
            model=model, source_ref=entry.python.strip(), version=entry.version, system=entry.system or ""))
    data = {"name": entry.id, "version": entry.version or "inline", "model": model,
            "system": entry.system or "", "template": entry.text}
    prompt, problems = check(Prompt, data, label=f"prompt {entry.id!r}")
    for problem in problems:
        reader.add(where, problem.text, problem.field)
    return prompt


# ---- models, suite, scorer, transform -----------------------------------------------------------------------------
def _models(reader: _Reader, items: list[Any] | None) -> tuple[list[ModelConfig] | None, dict[str, str]]:
    if items is None:
        return None, {}
    configs, urls = [], {}
    for number, entry in reader.entries("models", items, _ModelEntry):
        where = ("models", number)
        model_id = reader.attempt(where, lambda e=entry: canonical_model_id(e if isinstance(e, str) else e.id))
        if model_id is None:
            continue
        if isinstance(entry, str):
            configs.append(ModelConfig(model_id))
            continue
        config = reader.attempt((*where, "params"), lambda e=entry, m=model_id: ModelConfig(m, e.params, e.label))
        if config is not None:
            configs.append(config)
        if entry.base_url is not None:
            _base_url(reader, where, model_id, entry.base_url, urls)
    if not configs and not reader.problems:
        reader.add(("models",), "`models:` is empty; list model ids, or leave the key out to use each prompt's pin.")
    return configs or None, urls


def _base_url(reader: _Reader, where: tuple, model_id: str, url: str, urls: dict[str, str]) -> None:
    provider = split_model_id(model_id)[0]
    if provider not in ("openai", "anthropic"):
        reader.add((*where, "base_url"), f"base_url applies to openai and anthropic models, not to {model_id!r}.")
    elif urls.setdefault(provider, url) != url:
        reader.add((*where, "base_url"), f"{provider} models are given two endpoints ({urls[provider]!r} and "
                                         f"{url!r}); one run uses one endpoint per provider.")


def _suite(reader: _Reader, value: Any) -> Suite | None:
    entry = value if isinstance(value, dict) else {"path": value}
    checked, problems = check(_SuiteEntry, entry, reader.document.node if isinstance(value, dict) else None,
                              prefix=("suite",))
    if checked is None:
        reader.problems += [Problem(p.line or key_line(reader.document.node, "suite"), f"suite.{p.field}", p.text)
                            for p in problems]
        return None
    options = {key: item for key, item in entry.items() if key != "path"}
    accepted = [name for name, parameter in inspect.signature(load_suite).parameters.items()
                if parameter.kind is parameter.KEYWORD_ONLY]
    unknown = [key for key in options if key not in accepted]
    for key in unknown:
        reader.add(("suite", key), f"unknown key.{did_you_mean(key, ['path', *accepted])} Allowed keys: path, "
                                   f"{', '.join(accepted)}.", f"suite.{key}")
    if unknown:
        return None
    return reader.attempt(("suite",), lambda: load_suite(reader.folder / checked.path, **options))


def _scorer(reader: _Reader, spec: Any, suite: Suite | None) -> CaseScorers | None:
    if spec is not None:
        problems = scorer_spec_problems(spec)
        for problem in problems:
            reader.add(("scorer",), problem, "scorer")
        if problems:
            return None
    labels = suite.labels if suite is not None else None
    default = reader.attempt(("scorer",), lambda: build_scorer(spec if spec is not None else "exact",
                                                               base_dir=reader.folder, labels=labels))
    if default is None or suite is None:
        return None
    scorers = CaseScorers(default, base_dir=reader.folder)
    for case in suite:  # each case's own spec is built now: a python scorer that cannot import is refused here
        if case.scorer is not None:
            reader.attempt(("suite",), lambda c=case: scorers.for_case(c))
    return scorers


def _thresholds(reader: _Reader, thresholds: dict[str, float], suite: Suite | None) -> None:
    for name, value in thresholds.items():
        where = ("thresholds", name)
        if name not in THRESHOLDS:
            reader.add(where, f"unknown threshold.{did_you_mean(name, THRESHOLDS)} Known: {', '.join(THRESHOLDS)}.")
        elif not 0 <= value <= 1:
            reader.add(where, f"a threshold is a share within [0, 1], got {value!r}.")
        elif name in ("macro_f1", "micro_f1", "kappa") and suite is not None and not suite.labels:
            reader.add(where, f"{name} reads answers against the suite's labels, and suite {suite.name!r} has none. "
                              "Declare `labels:` in the suite, or use an accuracy threshold.")


# ---- the entry point ------------------------------------------------------------------------------------------------
def load_eval(path: str | Path) -> EvalSpec:
    """Read an eval file (``promptlab.yaml``) into an `EvalSpec`: ``spec.run()``, ``spec.compare(results)``,
    ``spec.check(results)``. The format is in this module's docstring.

    Raises:
        EvalFileError: the file is missing, not YAML, or invalid; or a prompt file, the suite or python code it
            names cannot be loaded. Every problem is listed, each with its line.
    """
    path = Path(path)
    document = load_yaml(read_text(path, EvalFileError, _WHAT), str(path), EvalFileError)
    require_mapping(document.data, str(path), _WHAT, EvalFileError, "Start the file with `prompts:` and `suite:`.")
    data, problems = check(_EvalFile, document.data, document.node)
    if data is None:
        raise EvalFileError(report(str(path), _WHAT, problems, _FIX))
    reader = _Reader(path, document)
    models, urls = _models(reader, data.models)
    variants = _prompts(reader, data.prompts, models)
    if data.params is not None:
        reader.attempt(("params",), lambda: check_values({k: v for k, v in data.params.items()
                                                          if not isinstance(v, list)}, "params"))
    suite = _suite(reader, data.suite)
    scorers = _scorer(reader, data.scorer, suite)
    transform = reader.attempt(("transform",), lambda: as_transform(data.transform, base_dir=reader.folder))
    baseline = data.baseline or next(iter(variants), "")
    declared = [*variants, *(item.get("id") for item in data.prompts if isinstance(item, dict))]
    if data.baseline is not None and data.baseline not in declared:
        reader.add(("baseline",), f"no prompt has the id {data.baseline!r}.{did_you_mean(data.baseline, declared)} "
                                  f"Prompts: {', '.join(map(str, dict.fromkeys(declared)))}.")
    _thresholds(reader, data.thresholds, suite)
    if reader.problems:
        reader.problems.sort(key=lambda p: p.line or 0)
        raise EvalFileError(report(str(path), _WHAT, reader.problems, _FIX))
    return EvalSpec(path=path, variants=variants, suite=suite, description=data.description, models=models,
                    base_urls=urls, params=data.params, scorer=data.scorer, scorers=scorers, transform=transform,
                    repeats=data.repeats, concurrency=data.concurrency, sample=data.sample, seed=data.seed,
                    baseline=baseline, thresholds=dict(data.thresholds),
                    report=reader.folder / data.report if data.report else None)

