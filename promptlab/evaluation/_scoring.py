"""Scorers: turn (case, completion text) into a `Score(value, passed, reason)`.

A scorer is any callable ``(case, output) -> Score`` (or returning a bool or a number). Built-ins:
`ExactMatch` (normalised; with a label set it reads the label the answer gives, see `LabelSet`), `Contains` /
`AnyOf`, `IContains`, `StartsWith`, `Regex`, `JsonValid`, `JsonSchema` and `ContainsJson` (format compliance),
`Numeric` (tolerance). A case may name its own scorer (``scorer: contains``, or any spec of the one grammar that
`promptlab.evaluation._scorer_specs.build_scorer` builds). A scorer that raises becomes a recorded scoring error.
Every built-in explains its verdict in ``Score.reason``, a pass too.

A scorer that never reads ``case.expected`` says so with ``needs_expected = False`` (an attribute or property).
A suite file may leave ``expected`` out of a case that names such a built-in (``scorer: json``), or of every
case when loaded with ``load_suite(path, require_expected=False)`` for a scorer of your own; a built-in that
needs the value records a scoring error on such a case rather than comparing with None.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..authoring._labels import LabelSet, label_words
from ..errors import ArgumentError, UnknownNameError

if TYPE_CHECKING:  # for annotations only: the suite module reads labels with this module's LabelSet
    from ..authoring._suite import Case


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


def _verdict(passed: bool, fail_reason: str, pass_reason: str) -> Score:
    return Score(1.0 if passed else 0.0, passed, pass_reason if passed else fail_reason)


def normalize(text: Any) -> str:
    """Lower-case, strip punctuation and collapse whitespace: ``" Positive! "`` → ``"positive"``."""
    return " ".join(str(text).lower().translate(_PUNCT).split())


def _needs_expected(scorer: Any) -> bool:
    return bool(getattr(scorer, "needs_expected", True))


def _require_expected(case: Case, scorer_name: str) -> Any:
    """The case's expected value; a case without one cannot be scored by this scorer (a recorded error)."""
    if case.expected is None:
        raise ArgumentError(f"case {case.id!r} has no `expected` value, and the {scorer_name} scorer compares with "
                            "it. Add `expected:` to the case, or score it with a scorer that needs none.")
    return case.expected


def _quote_labels(labels: Iterable[str]) -> str:
    return ", ".join(repr(label) for label in labels)


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class ExactMatch:
    """Exact match, ignoring case, spacing and punctuation; with ``labels``, the label the answer gives.

    With a label set the answer is read with `LabelSet.read`: a label matches whatever its case, spacing,
    hyphens, slashes or trailing punctuation ("billing-inquiries." reads as "Billing Inquiries"); the longest
    label wins at each position, on word boundaries ("Claims Assistance" is not read as "Claims"). An answer
    that names two different labels fails with both named, unless the first leads the answer and the rest is
    its explanation ("Mixed: good screen, bad battery"). An answer naming no label fails as off-label. Every
    verdict carries its reason, a pass too ("read label 'Billing Inquiries'").
    """

    labels: tuple[str, ...] | None = None
    needs_expected: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.labels:
            object.__setattr__(self, "labels", tuple(self.labels))
            object.__setattr__(self, "_label_set", LabelSet(self.labels))

    def __call__(self, case: Case, output: str) -> Score:
        expected = _require_expected(case, "exact-match")
        if not self.labels:
            same = label_words(output) == label_words(expected) or normalize(output) == normalize(expected)
            return _verdict(same, f"expected {normalize(expected)!r}, got {_shorten(normalize(output))!r}",
                            f"answer equals the expected {normalize(expected)!r}")
        return self._score_label(expected, output)

    def _score_label(self, expected: Any, output: str) -> Score:
        reading = self._label_set.read(output)
        if reading.label is None and not reading.named:
            return Score(0.0, False, f"no label in answer {_shorten(output)!r} (labels: {', '.join(self.labels)})")
        if reading.label is None:
            return Score(0.0, False, f"answer names {len(reading.named)} different labels: "
                                     f"{_quote_labels(reading.named)}; expected {expected!r}. "
                                     "A classification answer names one label.")
        want = self._label_set.canonical(expected)
        how = f"read label {reading.label!r}"
        if reading.leading:
            others = _quote_labels(label for label in reading.named if label != reading.label)
            how += f" (it leads the answer; {others} read as its explanation)"
        if want is None:
            return Score(0.0, False, f"expected {expected!r} is not one of the labels; {how}")
        return _verdict(reading.label == want, f"expected {want!r}, got {reading.label!r}", how)

    def extract(self, output: str) -> str | None:
        """The answer as compared: the normalised output, or (with labels) the label read, or None."""
        if not self.labels:
            return normalize(output)
        return self._label_set.read(output).label


@dataclass(frozen=True)
class Contains:
    """Passes when the output contains the expected text (normalised)."""

    needs_expected: ClassVar[bool] = True

    def __call__(self, case: Case, output: str) -> Score:
        expected = _require_expected(case, "contains")
        return _verdict(normalize(expected) in normalize(output), f"{expected!r} not in the answer",
                        f"{expected!r} found in the answer")


@dataclass(frozen=True)
class IContains:
    """Passes when the output contains the expected text, ignoring case only (promptfoo's ``icontains``; `Contains`
    also ignores punctuation and spacing)."""

    needs_expected: ClassVar[bool] = True

    def __call__(self, case: Case, output: str) -> Score:
        expected = str(_require_expected(case, "icontains"))
        return _verdict(expected.casefold() in output.casefold(), f"{expected!r} not in the answer (ignoring case)",
                        f"{expected!r} found in the answer (ignoring case)")


@dataclass(frozen=True)
class StartsWith:
    """Passes when the output, past leading whitespace, starts with the expected text (case-sensitive)."""

    needs_expected: ClassVar[bool] = True

    def __call__(self, case: Case, output: str) -> Score:
        expected = str(_require_expected(case, "starts_with"))
        return _verdict(output.lstrip().startswith(expected), f"the answer does not start with {expected!r} "
                        f"(it starts {_shorten(output.lstrip(), 40)!r})", f"the answer starts with {expected!r}")


@dataclass(frozen=True)
class AnyOf:
    """Passes when the output contains any of the expected texts (``expected`` is a list)."""

    needs_expected: ClassVar[bool] = True

    def __call__(self, case: Case, output: str) -> Score:
        expected = _require_expected(case, "any_of")
        options = expected if isinstance(expected, list) else [expected]
        hit = next((option for option in options if normalize(option) in normalize(output)), None)
        return _verdict(hit is not None, f"none of {options!r} in the answer", f"{hit!r} found in the answer")


@dataclass(frozen=True)
class Regex:
    """Passes when the pattern (or, by default, the case's ``expected`` as a pattern) matches the output."""

    pattern: str | None = None
    flags: int = re.IGNORECASE

    @property
    def needs_expected(self) -> bool:
        """Without its own pattern, the scorer reads the pattern from the case's ``expected``."""
        return self.pattern is None

    def __call__(self, case: Case, output: str) -> Score:
        pattern = self.pattern or str(_require_expected(case, "regex"))
        match = re.search(pattern, output, self.flags)
        return _verdict(match is not None, f"/{pattern}/ did not match",
                        f"/{pattern}/ matched {_shorten(match.group()) if match else ''!r}")


def _parse_json(output: str) -> Any:
    """Parse JSON, tolerating a fenced ```json block around it."""
    text = output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    return json.loads(fenced.group(1) if fenced else text)


@dataclass(frozen=True)
class JsonValid:
    """Format compliance: the output parses as JSON (and, with ``compare_expected``, equals ``expected``)."""

    compare_expected: bool = False

    @property
    def needs_expected(self) -> bool:
        """Only a comparing scorer needs the case's ``expected``."""
        return self.compare_expected

    def __call__(self, case: Case, output: str) -> Score:
        try:
            parsed = _parse_json(output)
        except json.JSONDecodeError as exc:
            return Score(0.0, False, f"not valid JSON: {exc.msg} at {exc.pos}")
        if self.compare_expected and case.expected is not None:
            return _verdict(parsed == case.expected, f"JSON differs from expected {case.expected!r}",
                            "valid JSON, equal to the expected value")
        return Score(1.0, True, "valid JSON")


@dataclass(frozen=True)
class JsonSchema:
    """Format compliance: the output is JSON conforming to ``schema`` (JSON Schema, via `jsonschema`)."""

    schema: dict
    needs_expected: ClassVar[bool] = False

    def __call__(self, case: Case, output: str) -> Score:
        import jsonschema

        try:
            jsonschema.validate(_parse_json(output), self.schema)
        except json.JSONDecodeError as exc:
            return Score(0.0, False, f"not valid JSON: {exc.msg}")
        except jsonschema.ValidationError as exc:
            return Score(0.0, False, f"schema violation at {list(exc.absolute_path)!r}: {exc.message}")
        return Score(1.0, True, "valid JSON, conforms to the schema")


_NO_JSON = object()


def find_json(output: str) -> Any:
    """The first JSON object or array inside free text (an answer with prose around its JSON), or `_NO_JSON`."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", output):
        try:
            value, _ = decoder.raw_decode(output[match.start():])
        except json.JSONDecodeError:
            continue
        return value
    return _NO_JSON


@dataclass(frozen=True)
class ContainsJson:
    """Format compliance: the output contains a JSON object or array (prose around it is fine) and, with
    ``schema``, the first one conforms to it (JSON Schema, via `jsonschema`)."""

    schema: dict | None = None
    needs_expected: ClassVar[bool] = False

    def __call__(self, case: Case, output: str) -> Score:
        found = find_json(output)
        if found is _NO_JSON:
            return Score(0.0, False, f"no JSON object or array in {_shorten(output)!r}")
        if self.schema is None:
            return Score(1.0, True, "contains JSON")
        import jsonschema

        try:
            jsonschema.validate(found, self.schema)
        except jsonschema.ValidationError as exc:
            return Score(0.0, False, f"contained JSON violates the schema at {list(exc.absolute_path)!r}: "
                                     f"{exc.message}")
        return Score(1.0, True, "contains JSON that conforms to the schema")


@dataclass(frozen=True)
class Numeric:
    """Passes when the first number in the output is within ``abs_tol`` or ``rel_tol`` of ``expected``."""

    abs_tol: float = 0.0
    rel_tol: float = 1e-9
    needs_expected: ClassVar[bool] = True

    def __call__(self, case: Case, output: str) -> Score:
        want = float(_require_expected(case, "numeric"))
        match = re.search(r"-?\d+(?:[.,]\d+)?(?:e-?\d+)?", output.replace(",", ""))
        if match is None:
            return Score(0.0, False, f"no number in {_shorten(output)!r}")
        got = float(match.group())
        ok = math.isclose(got, want, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return _verdict(ok, f"expected {want}, got {got}", f"got {got}, within tolerance of {want}")


BUILTIN_SCORERS: dict[str, Callable[[], Scorer]] = {
    "exact": ExactMatch, "contains": Contains, "icontains": IContains, "starts_with": StartsWith, "any_of": AnyOf,
    "regex": Regex, "json": JsonValid, "contains_json": ContainsJson, "numeric": Numeric,
}


def as_score(result: Any) -> Score:
    """Accept a `Score`, a bool or a number from a user's scorer."""
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(float(result), result)
    if isinstance(result, (int, float)):
        return Score(float(result), None)
    raise ArgumentError(f"a scorer must return Score, bool or a number, got {type(result).__name__} {result!r}")


def default_scorer(labels: Iterable[str] | None) -> Scorer:
    """Exact match, reading the label the answer gives when the suite has a label set."""
    return ExactMatch(tuple(labels) if labels else None)


def _chosen(scorer: Scorer, case: Case) -> Scorer:
    """The scorer of one case: a `CaseScorers` (what the runner passes) resolves any spec, built once per run;
    otherwise a case naming a built-in gets it, and a case without one the default."""
    if hasattr(scorer, "for_case"):
        return scorer.for_case(case)
    if case.scorer is None:
        return scorer
    if isinstance(case.scorer, str) and case.scorer in BUILTIN_SCORERS:
        return BUILTIN_SCORERS[case.scorer]()
    raise UnknownNameError(f"case {case.id!r} names scorer {case.scorer!r}, which is not a built-in name; a spec is "
                           f"built by promptlab.evaluation.build_scorer (pl.run builds each case's). Built-in names: "
                           f"{sorted(BUILTIN_SCORERS)}")


def score_one(scorer: Scorer, case: Case, output: str) -> tuple[Score, str | None]:
    """Run a scorer (or the case's own one); an exception becomes a scoring error, not a crash."""
    try:
        return as_score(_chosen(scorer, case)(case, output)), None
    except Exception as exc:  # a user's scorer may raise anything; record it on the row
        return Score(None, None, ""), f"{type(exc).__name__}: {exc}"


async def ascore_one(scorer: Scorer, case: Case, output: str) -> tuple[Score, str | None]:
    """`score_one` for scorers that call models (they have ``ascore``, like the LLM judge)."""
    try:
        chosen = _chosen(scorer, case)
        if not hasattr(chosen, "ascore"):
            return as_score(chosen(case, output)), None
        score = await chosen.ascore(case, output)
    except Exception as exc:  # a user's scorer or a judge bug must not sink the run
        return Score(None, None, ""), f"{type(exc).__name__}: {exc}"
    return score, (score.reason if score.error_type else None)
