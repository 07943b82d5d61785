"""Scorer specs → scorers: the one grammar of scorers written in files (see `promptlab.authoring._labels`).

A spec is one of::

    contains                                   # a built-in name; compares with the case's `expected`
    {type: contains, value: refund}            # `value` is used instead of `expected`
    {type: regex, value: "^Label: \\w+$", negate: true}
    {type: json, value: {type: object, required: [label]}}      # json / contains_json: value is a JSON Schema
    {type: json_field, path: sentiment}        # the answer's JSON field equals `expected` (or `value:`)
    {type: python, value: "checks:is_polite", threshold: 0.5}   # fn(output, case) -> bool | number | Score | dict
    {type: judge, value: "Is polite and concise", model: anthropic:claude-3-5-sonnet-20241022, threshold: 0.5}
    [contains, {type: regex, value: "\\d+"}]    # a list: all must pass; the score is the mean of the scores

``negate: true`` turns a verdict over (a pass fails, a score s becomes 1 - s). ``threshold`` (python and judge,
in [0, 1], default 0.5) is where a number passes: a python function's number, a judge's score rescaled to [0, 1].
A python function may return a mapping ``{pass, score, reason}`` (promptfoo's grading result) too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..authoring._callable import import_callable
from ..authoring._labels import check_scorer_spec
from ..errors import ArgumentError
from ._scoring import BUILTIN_SCORERS, AnyOf, ContainsJson, ExactMatch, JsonSchema, Regex, Score, Scorer, as_score

if TYPE_CHECKING:
    from ..authoring._suite import Case

DEFAULT_THRESHOLD = 0.5


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def describe_spec(spec: Any) -> str:
    """A short name of a spec for reasons and metadata: ``contains``, ``not regex '\\d+'``, ``python checks:f``."""
    if isinstance(spec, list):
        return " + ".join(describe_spec(item) for item in spec)
    if isinstance(spec, str):
        return spec
    text = spec["type"]
    if spec.get("path") is not None:
        text += f" {spec['path']}"
    if spec.get("value") is not None:
        text += f" {_short(spec['value'])!r}" if spec["type"] not in ("python",) else f" {spec['value']}"
    return f"not {text}" if spec.get("negate") else text


async def _ascore(scorer: Scorer, case: Case, output: str) -> Score:
    if hasattr(scorer, "ascore"):
        return await scorer.ascore(case, output)
    return as_score(scorer(case, output))


async def _aclose(scorer: Any) -> None:
    if hasattr(scorer, "aclose"):
        await scorer.aclose()


@dataclass(frozen=True)
class WithValue:
    """A built-in that compares with a fixed ``value`` instead of the case's ``expected``."""

    inner: Scorer
    value: Any
    needs_expected = False

    def __call__(self, case: Case, output: str) -> Score:
        return as_score(self.inner(case.model_copy(update={"expected": self.value}), output))


@dataclass(frozen=True)
class Not:
    """The opposite verdict: a pass fails and a failure passes; a score s in [0, 1] becomes 1 - s."""

    inner: Scorer

    @property
    def needs_expected(self) -> bool:
        """As the scorer it turns over."""
        return bool(getattr(self.inner, "needs_expected", True))

    def __call__(self, case: Case, output: str) -> Score:
        return self._flip(as_score(self.inner(case, output)))

    async def ascore(self, case: Case, output: str) -> Score:
        """The opposite of the inner scorer's asynchronous verdict (a judge)."""
        return self._flip(await _ascore(self.inner, case, output))

    async def aclose(self) -> None:
        """Close the inner scorer's connections."""
        await _aclose(self.inner)

    @staticmethod
    def _flip(score: Score) -> Score:
        if score.error_type:
            return score
        value = 1.0 - score.value if score.value is not None and 0.0 <= score.value <= 1.0 else None
        passed = None if score.passed is None else not score.passed
        return Score(value, passed, f"negated: {score.reason}" if score.reason else "negated", dict(score.details))


@dataclass(frozen=True)
class AllOf:
    """Several scorers that must all pass: the score is the mean of their scores; the reason names the ones that
    failed (or gave no verdict)."""

    parts: tuple[tuple[str, Scorer], ...]

    @property
    def needs_expected(self) -> bool:
        """Whether any part compares with ``expected``."""
        return any(getattr(scorer, "needs_expected", True) for _, scorer in self.parts)

    @property
    def concurrency(self) -> int:
        """The tightest limit of its parts (a judge's)."""
        return min((getattr(scorer, "concurrency", 8) for _, scorer in self.parts), default=8)

    def __call__(self, case: Case, output: str) -> Score:
        return self._combine([as_score(scorer(case, output)) for _, scorer in self.parts])

    async def ascore(self, case: Case, output: str) -> Score:
        """Score with every part at once (judges run concurrently)."""
        return self._combine(list(await asyncio.gather(*[_ascore(s, case, output) for _, s in self.parts])))

    async def aclose(self) -> None:
        """Close every part's connections."""
        for _, scorer in self.parts:
            await _aclose(scorer)

    def _combine(self, scores: list[Score]) -> Score:
        failed = next((s for s in scores if s.error_type), None)
        if failed is not None:
            return failed
        values = [s.value for s in scores if s.value is not None]
        value = sum(values) / len(values) if len(values) == len(scores) else None
        verdicts = [s.passed for s in scores]
        passed = False if False in verdicts else (None if None in verdicts else True)
        if passed:
            return Score(value, True, f"all {len(scores)} passed")
        bad = [f"{name} ({score.reason or 'no verdict'})" for (name, _), score in zip(self.parts, scores, strict=True)
               if score.passed is not True]
        return Score(value, passed, ("failed: " if passed is False else "no verdict: ") + "; ".join(bad))


@dataclass(frozen=True)
class PythonScorer:
    """A scorer written in Python, named ``module:function`` and called as ``fn(output, case)``.

    It may return a bool, a number (passes at or above ``threshold``), a `Score`, or a mapping ``{pass, score,
    reason}`` as promptfoo's python assertions do.
    """

    ref: str
    fn: Any
    threshold: float = DEFAULT_THRESHOLD
    needs_expected = False

    def __call__(self, case: Case, output: str) -> Score:
        result = self.fn(output, case)
        if isinstance(result, Score):
            return result
        if isinstance(result, bool):
            return Score(float(result), result, f"{self.ref} returned {result}")
        if isinstance(result, int | float):
            return Score(float(result), result >= self.threshold,
                         f"{self.ref} returned {result} (passes at >= {self.threshold})")
        if isinstance(result, Mapping):
            return self._from_mapping(result)
        raise ArgumentError(f"python scorer {self.ref} returned {type(result).__name__} {_short(result)!r}; return "
                            "a bool, a number, a Score, or a mapping {pass, score, reason}.")

    def _from_mapping(self, result: Mapping) -> Score:
        passed = result.get("pass", result.get("passed"))
        score = result.get("score")
        if passed is None and score is None:
            raise ArgumentError(f"python scorer {self.ref} returned {dict(result)!r} without `pass` or `score`.")
        value = float(score) if score is not None else float(bool(passed))
        verdict = bool(passed) if passed is not None else value >= self.threshold
        return Score(value, verdict, str(result.get("reason", f"{self.ref} returned {_short(dict(result))}")))


def _builtin(name: str, labels: tuple[str, ...] | None) -> Scorer:
    return ExactMatch(labels) if name == "exact" and labels else BUILTIN_SCORERS[name]()


def _with_value(kind: str, value: Any) -> Scorer:
    if kind == "regex":
        return Regex(pattern=value)
    if kind == "json":
        return JsonSchema(value)
    if kind == "contains_json":
        return ContainsJson(schema=value)
    if kind == "any_of":
        return WithValue(AnyOf(), value if isinstance(value, list) else [value])
    return WithValue(BUILTIN_SCORERS[kind](), value)


def _build_one(spec: Any, base_dir: str | Path | None, labels: tuple[str, ...] | None) -> Scorer:
    if isinstance(spec, str):
        return _builtin(spec, labels)
    kind, value = spec["type"], spec.get("value")
    threshold = float(spec.get("threshold", DEFAULT_THRESHOLD))
    if kind == "python":
        fn = import_callable(value, base_dir=base_dir, what="python scorer")
        scorer: Scorer = PythonScorer(value.strip(), fn, threshold)
    elif kind == "json_field":
        from ._fields import UNSET, JsonField

        scorer = JsonField(spec["path"], UNSET if value is None else value, labels)
    elif kind == "judge":
        from ._judge import judge

        low, high = 1, 5
        scorer = judge(criteria=[("rubric", value)], model=spec["model"], scale=(low, high),
                       pass_threshold=low + threshold * (high - low))
    elif value is None:
        scorer = _builtin(kind, labels)
    else:
        scorer = _with_value(kind, value)
    return Not(scorer) if spec.get("negate") else scorer


def build_scorer(spec: Any, *, base_dir: str | Path | None = None,
                 labels: tuple[str, ...] | list[str] | None = None) -> Scorer:
    """The scorer a spec describes (see the module docstring for the grammar).

    Args:
        spec: a built-in name, a ``{type, value, negate, threshold, model, path}`` mapping, or a list of those.
        base_dir: the folder ``python`` references are imported from (the referring file's); default the
            current directory.
        labels: a label set: ``exact`` then reads the label an answer gives (as the default scorer does), and
            ``json_field`` the label a text field names.

    Raises:
        UnknownNameError: the spec names no built-in scorer (with "did you mean").
        ArgumentError: any other problem of the spec, or a python reference that cannot be imported.
    """
    check_scorer_spec(spec)
    labels = tuple(labels) if labels else None
    if isinstance(spec, list):
        return AllOf(tuple((describe_spec(item), _build_one(item, base_dir, labels)) for item in spec))
    return _build_one(spec, base_dir, labels)


def case_scorer(case: Case, *, base_dir: str | Path | None = None) -> Scorer:
    """The scorer a case names in its ``scorer:`` (built without labels: a case's ``exact`` compares its text).

    Raises:
        UnknownNameError or ArgumentError: the message names the case and what is wrong with its spec.
    """
    try:
        return build_scorer(case.scorer, base_dir=base_dir)
    except ArgumentError as exc:
        raise type(exc)(f"case {case.id!r} names scorer {case.scorer!r}: {exc}") from None


class CaseScorers:
    """The scorer of each case in one run: the case's own spec (built once per distinct spec) or the default.

    The runner wraps its scorer in one, so a python reference is imported once per run and a case's judge is
    closed with the run.
    """

    def __init__(self, default: Scorer, *, base_dir: str | Path | None = None):
        self.default = default
        self.base_dir = base_dir
        self._built: dict[str, Scorer] = {}

    @property
    def concurrency(self) -> int:
        """The default scorer's limit on scorings in flight."""
        return getattr(self.default, "concurrency", 8)

    def for_case(self, case: Case) -> Scorer:
        """The scorer of ``case``."""
        if case.scorer is None:
            return self.default
        key = json.dumps(case.scorer, sort_keys=True, default=str)
        if key not in self._built:
            self._built[key] = case_scorer(case, base_dir=self.base_dir)
        return self._built[key]

    def prebuild(self, cases: Any) -> None:
        """Build every case's scorer now (imports python references), so a bad one is refused before any call."""
        for case in cases:
            self.for_case(case)

    async def aclose(self) -> None:
        """Close the connections of every scorer built (judges) and of the default."""
        for scorer in (self.default, *self._built.values()):
            await _aclose(scorer)
