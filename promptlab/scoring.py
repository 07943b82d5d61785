"""Scorers: turn (case, completion text) into a `Score(value, passed, reason)`.

A scorer is any callable ``(case, output) -> Score`` (or returning a bool or a number). Built-ins:
`ExactMatch` (normalised; with a label set it reads the first label the answer gives), `Contains` /
`AnyOf`, `Regex`, `JsonValid` and `JsonSchema` (format compliance), `Numeric` (tolerance). A case may name
its own scorer (``scorer: contains`` in the suite file). A scorer that raises becomes a recorded scoring error.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .suite import Case

_PUNCT = str.maketrans("", "", string.punctuation + "“”‘’«»¿¡。、！？")


@dataclass(frozen=True)
class Score:
    """A scorer's verdict: a value in [0, 1] (or a graded number), pass/fail, and why.

    ``details`` holds sub-scores (a judge's per-criterion scores; they become ``score_<name>`` columns);
    ``error_type`` marks a verdict that could not be reached (``judge_failure``).
    """

    value: float | None
    passed: bool | None
    reason: str = ""
    details: dict = field(default_factory=dict)
    error_type: str | None = None


class Scorer(Protocol):
    """Anything called with the case and the model's output text."""

    def __call__(self, case: Case, output: str) -> Score | bool | float: ...


def normalize(text: Any) -> str:
    """Lower-case, strip punctuation and collapse whitespace: ``" Positive! "`` → ``"positive"``."""
    return " ".join(str(text).lower().translate(_PUNCT).split())


def _verdict(passed: bool, reason: str) -> Score:
    return Score(1.0 if passed else 0.0, passed, "" if passed else reason)


@dataclass(frozen=True)
class ExactMatch:
    """Normalised exact match. With ``labels``, the answer is the first label word the output contains,
    so ``"Negative. The text..."`` reads as ``negative``; an output naming no label fails as off-label."""

    labels: tuple[str, ...] | None = None

    def __call__(self, case: Case, output: str) -> Score:
        expected = normalize(case.expected)
        answer = self.extract(output)
        if answer is None:
            return Score(0.0, False, f"no label in answer {output!r} (labels: {', '.join(self.labels or ())})")
        return _verdict(answer == expected, f"expected {expected!r}, got {answer!r}")

    def extract(self, output: str) -> str | None:
        """The normalised answer: the whole output, or the first label it names."""
        text = normalize(output)
        if not self.labels:
            return text
        words = text.split()
        for word in words:
            if word in {normalize(label) for label in self.labels}:
                return word
        return None


@dataclass(frozen=True)
class Contains:
    """Passes when the output contains the expected text (normalised)."""

    def __call__(self, case: Case, output: str) -> Score:
        return _verdict(normalize(case.expected) in normalize(output), f"{case.expected!r} not in the answer")


@dataclass(frozen=True)
class AnyOf:
    """Passes when the output contains any of the expected texts (``expected`` is a list)."""

    def __call__(self, case: Case, output: str) -> Score:
        options = case.expected if isinstance(case.expected, list) else [case.expected]
        hit = any(normalize(option) in normalize(output) for option in options)
        return _verdict(hit, f"none of {options!r} in the answer")


@dataclass(frozen=True)
class Regex:
    """Passes when the pattern (or, by default, the case's ``expected`` as a pattern) matches the output."""

    pattern: str | None = None
    flags: int = re.IGNORECASE

    def __call__(self, case: Case, output: str) -> Score:
        pattern = self.pattern or str(case.expected)
        return _verdict(re.search(pattern, output, self.flags) is not None, f"/{pattern}/ did not match")


def _parse_json(output: str) -> Any:
    """Parse JSON, tolerating a fenced ```json block around it."""
    text = output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    return json.loads(fenced.group(1) if fenced else text)


@dataclass(frozen=True)
class JsonValid:
    """Format compliance: the output parses as JSON (and, with ``expected`` a dict, equals it)."""

    compare_expected: bool = False

    def __call__(self, case: Case, output: str) -> Score:
        try:
            parsed = _parse_json(output)
        except json.JSONDecodeError as exc:
            return Score(0.0, False, f"not valid JSON: {exc.msg} at {exc.pos}")
        if self.compare_expected and case.expected is not None:
            return _verdict(parsed == case.expected, f"JSON differs from expected {case.expected!r}")
        return Score(1.0, True)


@dataclass(frozen=True)
class JsonSchema:
    """Format compliance: the output is JSON conforming to ``schema`` (JSON Schema, via `jsonschema`)."""

    schema: dict

    def __call__(self, case: Case, output: str) -> Score:
        import jsonschema

        try:
            jsonschema.validate(_parse_json(output), self.schema)
        except json.JSONDecodeError as exc:
            return Score(0.0, False, f"not valid JSON: {exc.msg}")
        except jsonschema.ValidationError as exc:
            return Score(0.0, False, f"schema violation at {list(exc.absolute_path)!r}: {exc.message}")
        return Score(1.0, True)


@dataclass(frozen=True)
class Numeric:
    """Passes when the first number in the output is within ``abs_tol`` or ``rel_tol`` of ``expected``."""

    abs_tol: float = 0.0
    rel_tol: float = 1e-9

    def __call__(self, case: Case, output: str) -> Score:
        match = re.search(r"-?\d+(?:[.,]\d+)?(?:e-?\d+)?", output.replace(",", ""))
        if match is None:
            return Score(0.0, False, f"no number in {output!r}")
        got, want = float(match.group()), float(case.expected)
        ok = math.isclose(got, want, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return _verdict(ok, f"expected {want}, got {got}")


BUILTIN_SCORERS: dict[str, Callable[[], Scorer]] = {
    "exact": ExactMatch, "contains": Contains, "any_of": AnyOf, "regex": Regex,
    "json": JsonValid, "numeric": Numeric,
}


def as_score(result: Any) -> Score:
    """Accept a `Score`, a bool or a number from a user's scorer."""
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(float(result), result)
    if isinstance(result, (int, float)):
        return Score(float(result), None)
    raise TypeError(f"a scorer must return Score, bool or a number, got {type(result).__name__} {result!r}")


def default_scorer(labels: Iterable[str] | None) -> Scorer:
    """Exact match, reading the first label when the suite has a label set."""
    return ExactMatch(tuple(labels) if labels else None)


def _chosen(scorer: Scorer, case: Case) -> Scorer:
    if case.scorer is None:
        return scorer
    if case.scorer not in BUILTIN_SCORERS:
        raise ValueError(f"case {case.id!r} names scorer {case.scorer!r}; known: {sorted(BUILTIN_SCORERS)}")
    return BUILTIN_SCORERS[case.scorer]()


def score_one(scorer: Scorer, case: Case, output: str) -> tuple[Score, str | None]:
    """Run a scorer (or the case's own named one); an exception becomes a scoring error, not a crash."""
    try:
        return as_score(_chosen(scorer, case)(case, output)), None
    except Exception as exc:  # a user's scorer may raise anything; record it on the row
        return Score(None, None, ""), f"{type(exc).__name__}: {exc}"


async def ascore_one(scorer: Scorer, case: Case, output: str) -> tuple[Score, str | None]:
    """`score_one` for scorers that call models (they have ``ascore``, like the LLM judge)."""
    if case.scorer is not None or not hasattr(scorer, "ascore"):
        return score_one(scorer, case, output)
    try:
        score = await scorer.ascore(case, output)
    except Exception as exc:  # a judge bug must not sink the run
        return Score(None, None, ""), f"{type(exc).__name__}: {exc}"
    return score, (score.reason if score.error_type else None)
