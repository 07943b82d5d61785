"""Labels: how a suite's declared labels are read in free text, and the built-in scorer names a suite may use.

Both are part of the suite file format (``labels:`` and a case's ``scorer:``), so they live with the suites;
the scorers (`promptlab.evaluation`) read answers with the same `LabelSet`, so a suite's labels and the
scorer's verdicts can never disagree on what names a label.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError, UnknownNameError

# ---- labels ------------------------------------------------------------------------------------------------
# A label is read as a sequence of words: letters and digits, case-folded; every other character (space,
# hyphen, slash, underscore, punctuation) separates words, and apostrophes are dropped. So "Billing
# Inquiries", "billing-inquiries", "BILLING_INQUIRIES." and "Billing/Inquiries" are one label; a label's
# words written together ("BillingInquiries") also match it.
_WORD = re.compile(r"[^\W_]+")
_APOSTROPHES = str.maketrans("", "", "'’`´")
# After a leading label, one of these starts its explanation ("Mixed: good screen, bad battery").
_CLAUSE_BREAK = re.compile(r"[:.;!?\n(\[]|\s[-–—]\s|[–—]")
_MAX_PREFIX_WORDS = 4  # "Final answer:", "The intent is:" before the label


def _fold(text: Any) -> str:
    return unicodedata.normalize("NFKC", str(text)).casefold().translate(_APOSTROPHES)


def label_words(text: Any) -> tuple[str, ...]:
    """The words a label (or an answer) is matched on: ``"Billing-Inquiries."`` → ``("billing", "inquiries")``."""
    return tuple(_WORD.findall(_fold(text)))


@dataclass(frozen=True)
class LabelReading:
    """What an answer says, read against a label set.

    Attributes:
        label: the label read (as declared), or None when the answer names none or several.
        named: every distinct label the answer names, in order of first mention.
        leading: True when several labels are named but the first leads the answer and the rest read as
            its explanation ("Mixed: positive about the screen, negative about the battery").
    """

    label: str | None
    named: tuple[str, ...]
    leading: bool = False


class LabelSet:
    """A label set that reads labels in free text: longest label at each position, on word boundaries.

    Raises:
        ArgumentError: a label has no letters or digits, or two labels read the same ("Billing-Inquiries" and
            "billing inquiries").
    """

    def __init__(self, labels: Iterable[Any]):
        self.labels = tuple(str(label) for label in labels)
        self._forms: dict[tuple[str, ...], str] = {}
        for label in self.labels:
            words = label_words(label)
            if not words:
                raise ArgumentError(f"label {label!r} has no letters or digits, so no answer can name it. "
                                    "Give every label at least one word.")
            for form in dict.fromkeys((words, ("".join(words),))):
                other = self._forms.setdefault(form, label)
                if other != label:
                    raise ArgumentError(f"labels {other!r} and {label!r} read the same ({' '.join(form)!r}): case, "
                                        "spaces, hyphens and punctuation are ignored. Keep one of them.")
        self._longest = max((len(form) for form in self._forms), default=0)

    def canonical(self, value: Any) -> str | None:
        """The declared label that ``value`` spells (ignoring case, spacing and punctuation), or None."""
        words = label_words(value)
        return self._forms.get(words) or self._forms.get(("".join(words),))

    def close_matches(self, value: Any, n: int = 3) -> list[str]:
        """Declared labels that look like a misspelling of ``value`` (for "did you mean")."""
        by_text = {" ".join(label_words(label)): label for label in self.labels}
        return [by_text[m] for m in difflib.get_close_matches(" ".join(label_words(value)), by_text, n, 0.6)]

    def read(self, output: str) -> LabelReading:
        """Read the label an answer gives: the one label it names, or a leading label with its explanation."""
        text = _fold(output)
        tokens = list(_WORD.finditer(text))
        mentions = self._mentions([token.group() for token in tokens])
        named = tuple(dict.fromkeys(label for label, _, _ in mentions))
        if len(named) <= 1:
            return LabelReading(named[0] if named else None, named)
        first, rest = mentions[0], mentions[1:]
        if self._leads(text, tokens, first) and self._explained(text, tokens, first, rest):
            return LabelReading(first[0], named, leading=True)
        return LabelReading(None, named)

    def _mentions(self, words: list[str]) -> list[tuple[str, int, int]]:
        """(label, first word, past last word) of each mention, left to right, the longest label at each word."""
        found, i = [], 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                label = self._forms.get(tuple(words[i:i + n]))
                if label is not None:
                    found.append((label, i, i + n))
                    i += n
                    break
            else:
                i += 1
        return found

    @staticmethod
    def _leads(text: str, tokens: list[re.Match], first: tuple[str, int, int]) -> bool:
        """The first mention opens the answer, alone or after a short prefix ending in a colon ("Answer:")."""
        start = first[1]
        if start == 0:
            return True
        return start <= _MAX_PREFIX_WORDS and ":" in text[tokens[start - 1].end():tokens[start].start()]

    @staticmethod
    def _explained(text: str, tokens: list[re.Match], first: tuple[str, int, int],
                   rest: list[tuple[str, int, int]]) -> bool:
        """A clause break follows the first mention and what follows is prose, not just more labels."""
        end = first[2]
        if end >= len(tokens):
            return False
        if not _CLAUSE_BREAK.search(text[tokens[end - 1].end():tokens[end].start()]):
            return False
        in_labels = {i for _, start, stop in rest for i in range(start, stop)}
        return any(i not in in_labels for i in range(end, len(tokens)))


# ---- scorer specs --------------------------------------------------------------------------------------------
# The one grammar of scorers in files: a case's ``scorer:`` in a suite, the eval file's ``scorer:``, and what the
# promptfoo importer writes. A spec is a built-in name (``contains``), a mapping ``{type, value, negate, threshold,
# model, path}``, or a list of those (all must pass). This module checks the shape and the names, so files are refused
# with their line; `promptlab.evaluation.build_scorer` builds the scorer (and imports python functions).

# The built-in scorers a spec may name and whether each compares with the case's ``expected`` (when the spec gives
# no ``value``). `promptlab.evaluation`'s BUILTIN_SCORERS implements exactly these (a test holds the two together).
BUILTIN_SCORER_NAMES: dict[str, bool] = {
    "exact": True, "contains": True, "icontains": True, "starts_with": True, "any_of": True, "regex": True,
    "json": False, "contains_json": False, "numeric": True,
}
# Spec types that only exist as a mapping, with what their ``value`` must be.
VALUE_SCORER_TYPES: dict[str, str] = {
    "python": "a `module:function` reference (called as fn(output, case))",
    "judge": "the rubric text the judge scores the answer against",
}
# Spec types that read one field of a JSON answer: a mapping with ``path`` (``value`` optional, else ``expected``).
PATH_SCORER_TYPES: dict[str, str] = {
    "json_field": "a path into the answer's JSON, such as sentiment or items[0].name",
}
SPEC_KEYS = ("type", "value", "negate", "threshold", "model", "path")
_SPEC_FORM = ("A scorer is a built-in name (exact, contains ...), a mapping such as {type: contains, value: refund, "
              "negate: true}, or a list of those (all must pass).")
# `module:function` (dotted on both sides: `pkg.checks:Grader.score`)
PYTHON_REF = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def scorer_spec_problems(spec: Any) -> list[str]:
    """Every problem of a scorer spec, one sentence each with the value and the fix ([] when it is sound)."""
    if isinstance(spec, list):
        if not spec:
            return [f"an empty list of scorers scores nothing. {_SPEC_FORM}"]
        return [f"item {number}: {problem}" for number, item in enumerate(spec)
                for problem in (_item_problems(item) if not isinstance(item, list)
                                else [f"a list inside a list of scorers (got {_short(item)}). List the scorers "
                                      "once, at one level."])]
    return _item_problems(spec)


def _item_problems(spec: Any) -> list[str]:
    if isinstance(spec, str):
        return _name_problems(spec)
    if isinstance(spec, dict):
        return _mapping_problems(spec)
    return [f"got {type(spec).__name__} {_short(spec)}. {_SPEC_FORM}"]


def _name_problems(name: str) -> list[str]:
    if name in BUILTIN_SCORER_NAMES:
        return []
    if name in VALUE_SCORER_TYPES:
        return [f"scorer {name!r} needs a value: write {{type: {name}, value: <{VALUE_SCORER_TYPES[name]}>}}."]
    if name in PATH_SCORER_TYPES:
        return [f"scorer {name!r} needs a path: write {{type: {name}, path: <{PATH_SCORER_TYPES[name]}>}} (it "
                "compares the field with the case's expected, or with `value:`)."]
    known = [*BUILTIN_SCORER_NAMES, *VALUE_SCORER_TYPES, *PATH_SCORER_TYPES]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return [f"no built-in scorer is named {name!r}.{hint} Known: {', '.join(sorted(known))}."]


def _mapping_problems(spec: dict) -> list[str]:
    problems = []
    for key in spec:
        if key not in SPEC_KEYS:
            close = difflib.get_close_matches(str(key), SPEC_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(f"unknown key {key!r} in a scorer.{hint} Allowed keys: {', '.join(SPEC_KEYS)}.")
    kind = spec.get("type")
    if kind is None:
        return [*problems, f"a scorer mapping needs `type:` (got {_short(spec)}). {_SPEC_FORM}"]
    if not isinstance(kind, str):
        return [*problems, f"`type` must be a scorer name, got {_short(kind)}."]
    problems += [p for p in _name_problems(kind) if kind not in VALUE_SCORER_TYPES and kind not in PATH_SCORER_TYPES]
    problems += _path_problems(kind, spec)
    if "negate" in spec and not isinstance(spec["negate"], bool):
        problems.append(f"`negate` must be true or false, got {_short(spec['negate'])}.")
    problems += _threshold_problems(kind, spec)
    if kind in BUILTIN_SCORER_NAMES or kind in VALUE_SCORER_TYPES:
        problems += _value_problems(kind, spec)
    return problems


def _path_problems(kind: str, spec: dict) -> list[str]:
    """A json_field needs a ``path`` (its syntax is checked when the scorer is built); no other type takes one."""
    if kind not in PATH_SCORER_TYPES:
        known = kind in BUILTIN_SCORER_NAMES or kind in VALUE_SCORER_TYPES  # an unknown name is its own problem
        return [f"`path` applies to {', '.join(PATH_SCORER_TYPES)} scorers only, not to {kind!r}. Remove it."] \
            if "path" in spec and known else []
    path = spec.get("path")
    if not isinstance(path, str) or not path.strip():
        return [f"a {kind} scorer needs `path:`, {PATH_SCORER_TYPES[kind]} (got {_short(path)})."]
    return []


def _threshold_problems(kind: str, spec: dict) -> list[str]:
    problems = []
    if "threshold" in spec:
        value = spec["threshold"]
        if kind not in VALUE_SCORER_TYPES:
            problems.append(f"`threshold` applies to python and judge scorers (their score passes at or above it), "
                            f"not to {kind!r}. Remove it.")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            problems.append(f"`threshold` must be a number within [0, 1], got {_short(value)}.")
    if kind == "judge":
        model = spec.get("model")
        if not isinstance(model, str) or not model.strip():
            problems.append(f"a judge needs `model:`, the judge model's id (got {_short(model)}), for example "
                            "model: anthropic:claude-3-5-sonnet-20241022.")
    elif "model" in spec:
        problems.append(f"`model` applies to judge scorers only, not to {kind!r}. Remove it.")
    return problems


def _value_problems(kind: str, spec: dict) -> list[str]:
    """What is wrong with the ``value`` of a scorer of type ``kind`` (it replaces the case's ``expected``)."""
    if "value" not in spec or spec["value"] is None:
        if kind in VALUE_SCORER_TYPES:
            return [f"a {kind} scorer needs `value:`, {VALUE_SCORER_TYPES[kind]}."]
        return []
    value = spec["value"]
    if kind == "python":
        if not isinstance(value, str) or not PYTHON_REF.fullmatch(value.strip()):
            return [f"`value` of a python scorer must be 'module:function' (got {_short(value)}), for example "
                    "value: checks:is_polite (a checks.py beside the file)."]
    elif kind == "judge":
        if not isinstance(value, str) or not value.strip():
            return [f"`value` of a judge scorer is the rubric text, got {_short(value)}."]
    elif kind == "regex":
        return _pattern_problems(value)
    elif kind in ("json", "contains_json"):
        return _schema_problems(value)
    elif kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float | str) or not _is_number(value):
            return [f"`value` of a numeric scorer must be a number, got {_short(value)}."]
    elif kind == "any_of":
        if not isinstance(value, list | str) or isinstance(value, list) and not value:
            return [f"`value` of an any_of scorer is a list of texts, got {_short(value)}."]
    elif not isinstance(value, str | int | float | bool):
        return [f"`value` of a {kind} scorer must be text, got {_short(value)}."]
    return []


def _pattern_problems(value: Any) -> list[str]:
    if not isinstance(value, str):
        return [f"`value` of a regex scorer must be a pattern (text), got {_short(value)}."]
    try:
        re.compile(value)
    except re.error as exc:
        return [f"`value` {value!r} is not a valid regular expression ({exc}). Fix the pattern (quote it in YAML)."]
    return []


def _schema_problems(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"`value` of a json scorer is a JSON Schema (a mapping such as {{type: object, required: [label]}}), "
                f"got {_short(value)}."]
    import jsonschema

    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        return [f"`value` is not a valid JSON Schema: {exc.message}."]
    return []


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def spec_needs_expected(spec: Any) -> bool:
    """Whether a (sound) scorer spec compares with the case's ``expected``: a built-in that needs it and is given no
    ``value``, or a list holding one. python and judge scorers read it if they like, so they do not require it."""
    if isinstance(spec, list):
        return any(spec_needs_expected(item) for item in spec)
    if isinstance(spec, dict):
        kind = spec.get("type")
        return spec.get("value") is None and (BUILTIN_SCORER_NAMES.get(kind, False) or kind in PATH_SCORER_TYPES)
    return BUILTIN_SCORER_NAMES.get(spec, False)


def check_scorer_spec(spec: Any) -> None:
    """Refuse an unsound scorer spec with every problem listed.

    Raises:
        UnknownNameError: the spec names no built-in scorer (with "did you mean").
        ArgumentError: any other problem (a bad key, value or shape).
    """
    problems = scorer_spec_problems(spec)
    if not problems:
        return
    unknown = all(re.match(r"(item \d+: )?no built-in scorer", problem) for problem in problems)
    raise (UnknownNameError if unknown else ArgumentError)(" ".join(problems) if len(problems) == 1 else
                                                           "; ".join(problems))


def builtin_needs_expected(spec: Any) -> bool:
    """Whether the scorer a case names (``scorer: json``, or any spec) compares with the case's ``expected``.

    Raises:
        UnknownNameError: no built-in scorer has that name (the message suggests the closest names).
        ArgumentError: the spec is unsound otherwise (every problem listed).
    """
    check_scorer_spec(spec)
    return spec_needs_expected(spec)
