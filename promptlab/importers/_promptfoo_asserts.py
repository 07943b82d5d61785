"""promptfoo assertions, transforms and metrics as promptlab scorer specs, transforms and classification metrics.

An assertion ``{type, value, ...}`` (https://promptfoo.dev/docs/configuration/expected-outputs) becomes a scorer
spec of the eval file's grammar: ``{type: contains, value: Paris}``, ``{type: regex, value: ..., negate: true}``,
``{type: python, value: "promptfoo_shims:assert_1"}`` (inline python and python files, through a generated
module), ``{type: judge, value: <rubric>, model: <grader>}`` (``llm-rubric``). CSV cells use promptfoo's
shorthand (``contains: foo``, ``not-regex:\\d``, ``python: len(output) < 9``), read by `assertion_from_string`.
JavaScript, embeddings and the other model-graded types have no promptlab equivalent: they are logged with the
reason and what to do instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ..authoring._labels import scorer_spec_problems
from ..authoring._templates import render_template
from ._promptfoo_read import Log, Source, model_id_of

if TYPE_CHECKING:
    from ._promptfoo_shims import Shims

# promptfoo's assertion types, longest first so `contains-json` is not read as `contains` (CSV shorthand)
_TYPES = sorted((
    "equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any", "icontains-all",
    "starts-with", "regex", "is-json", "contains-json", "is-html", "contains-html", "is-sql", "contains-sql",
    "is-xml", "contains-xml", "is-refusal", "similar", "levenshtein", "rouge-n", "bleu", "gleu", "meteor",
    "latency", "cost", "perplexity", "perplexity-score", "classifier", "moderation", "llm-rubric", "g-eval",
    "factuality", "model-graded-factuality", "model-graded-closedqa", "answer-relevance", "context-faithfulness",
    "context-recall", "context-relevance", "conversation-relevance", "select-best", "max-score", "webhook",
    "is-valid-openai-function-call", "is-valid-openai-tools-call", "is-valid-function-call", "finish-reason",
    "word-count", "pi", "javascript", "python", "ruby", "guardrails"), key=len, reverse=True)
_SHORTHAND = re.compile(rf"^(not-)?({'|'.join(map(re.escape, _TYPES))})(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$")
_LIST_TYPES = {"contains-any", "contains-all", "icontains-any", "icontains-all"}
_SIMPLE = {"equals": "exact", "contains": "contains", "icontains": "icontains", "starts-with": "starts_with",
           "regex": "regex"}
# promptlab's contains and exact ignore case, spacing and punctuation; promptfoo's compare text as written
_LOOSER = {
    "equals": "equals → exact: promptlab compares ignoring case, spacing and punctuation ('Paris.' equals 'paris'); "
              "with the suite's labels it reads the label the answer gives",
    "contains": "contains / contains-any → contains / any_of: promptlab ignores case, spacing and punctuation when "
                "looking for the text (promptfoo matches it as written)",
}
_JUDGED = {"llm-rubric", "model-graded-closedqa", "factuality", "model-graded-factuality"}
DEFAULT_GRADER = "openai:gpt-4o"  # promptfoo's documented default grader for llm-rubric
_WHY = {
    "javascript": "JavaScript is not run: convert by hand to a python scorer ({type: python, value: "
                  "module:function}, called as fn(output, case))",
    "similar": "embedding similarity has no promptlab scorer; use a judge ({type: judge, value: rubric}) or a "
               "python scorer",
    "latency": "promptlab records every call's latency (latency_s); gate on p95 with pl.compare or the summary",
    "cost": "promptlab records every call's cost (cost_usd); set a Budget or compare costs in the summary",
}
_ACCURACY_WORDS = re.compile(r"(?i)^(accuracy|acc|pass_?rate|exact_?match)$")
_CLASSIFICATION_WORDS = re.compile(r"(?i)(precision|recall|f1|f_?score|accuracy|true_?positive|false_?positive|"
                                   r"false_?negative|true_?negative|\btp\b|\bfp\b|\bfn\b)")


def assertion_from_string(text: str, log: Log) -> dict[str, Any]:
    """A CSV ``__expected`` cell as a promptfoo assertion (promptfoo's shorthand; no prefix means ``equals``)."""
    for prefix, kind in (("javascript:", "javascript"), ("fn:", "javascript"), ("eval:", "javascript"),
                         ("grade:", "llm-rubric"), ("llm-rubric:", "llm-rubric"), ("python:", "python")):
        if text.startswith(prefix):
            return {"type": kind, "value": text[len(prefix):].strip()}
    if text.startswith("file://"):
        kind = "python" if re.search(r"\.py(:\w+)?$", text) else "javascript"
        return {"type": kind, "value": text}
    match = _SHORTHAND.match(text)
    if not match:
        return {"type": "equals", "value": text}
    negate, kind, threshold, value = match.groups()
    value = value or ""
    if value[:1].isspace():
        # promptfoo keeps the space in `contains: foo`; its docs write it that way meaning `foo`
        log.note("CSV assertions like `contains: foo`: the space after the colon is dropped (promptfoo would look "
                 "for ' foo'; its docs write the space meaning `foo`)")
    value = value.strip()
    assertion: dict[str, Any] = {"type": f"{negate or ''}{kind}"}
    if kind in _LIST_TYPES:
        assertion["value"] = [item.strip() for item in value.split(",") if item.strip()]
    elif value:
        assertion["value"] = value
    if threshold:
        assertion["threshold"] = float(threshold)
    return assertion


@dataclass
class Converter:
    """Turns one test's assertions into scorer specs; python code goes to `shims`, the rest is logged."""

    src: Source
    shims: Shims
    config: dict[str, Any]
    grader: str | None = None
    metric_names: dict[str, int] = field(default_factory=dict)
    judged: bool = False

    @property
    def log(self) -> Log:
        return self.src.log

    def specs(self, asserts: list[tuple[str, Any]], vars_: dict[str, Any], grader: str | None) -> list[dict]:
        """The scorer specs of a test's assertions, given as (where written, assertion) pairs."""
        specs: list[dict] = []
        for where, raw in asserts:
            specs += self._one(raw, vars_, where, grader)
        return specs

    def _one(self, raw: Any, vars_: dict[str, Any], where: str, grader: str | None) -> list[dict]:
        raw = self._resolve_ref(raw, where)
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            if raw is not None:
                self.log.skip(where, f"an assertion must be a mapping with a `type`, got {raw!r}")
            return []
        kind = raw["type"]
        where = f"{where} {kind}"
        if raw.get("metric"):
            self.metric_names[raw["metric"]] = self.metric_names.get(raw["metric"], 0) + 1
        if kind == "assert-set":
            return self._assert_set(raw, vars_, where, grader)
        if raw.get("weight") == 0:
            metric = f" (metric {raw['metric']!r})" if raw.get("metric") else ""
            self.log.skip(f"{where}{metric}", "weight 0: promptfoo counts it only in named metrics, never in "
                          "pass/fail (the metrics are listed below)")
            return []
        if raw.get("transform"):
            self.log.skip(where, "a per-assertion transform is not converted (promptlab transforms the answer once, "
                          "before every scorer): score the transformed value in a python scorer")
            return []
        if raw.get("weight") not in (None, 1, 1.0):
            self.log.note(f"{where}: weight {raw['weight']} ignored (a promptlab case passes when every scorer "
                          "passes; its score is their mean)")
        negate = kind.startswith("not-")
        base = kind[4:] if negate else kind
        if base == "python":
            return self._python(raw, negate, where)
        value = self._value(raw.get("value"), vars_, where)
        if value is _SKIP:
            return []
        specs = self._mapped(base, negate, value, raw, where, grader)
        problems = [problem for spec in specs for problem in scorer_spec_problems(spec)]
        if problems:  # a JavaScript pattern python cannot compile, a schema that is no schema ...
            self.log.skip(where, f"not a scorer promptlab can build: {' '.join(problems)}")
            return []
        return specs

    def _mapped(self, base: str, negate: bool, value: Any, raw: dict, where: str, grader: str | None) -> list[dict]:
        if base == "equals" and value is not None and not isinstance(value, str | int | float | bool):
            return [{"type": "python", "value": self.shims.json_equals(value, negate)}]
        if base in _SIMPLE and value is not None:
            text = _text(value)
            if base in _LOOSER:
                self.log.note(_LOOSER[base])
            return [_spec(_SIMPLE[base], _regex(text, self.log) if base == "regex" else text, negate)]
        if base in ("is-json", "contains-json"):
            schema = value if isinstance(value, dict) else _mapping(value)
            if value not in (None, "") and schema is None:
                self.log.skip(f"{where} schema", f"the schema must be a mapping (got {_short(str(value))}); "
                              "the assertion is converted without it")
            return [_spec("json" if base == "is-json" else "contains_json", schema, negate)]
        if base in _LIST_TYPES and isinstance(value, list) and value:
            items = [_text(item) for item in value]
            if base.endswith("-any"):
                self.log.note(_LOOSER["contains"])
                return [_spec("any_of", items, negate)]
            if negate:
                self.log.skip(where, "not-contains-all (some item missing) has no scorer spec; use a python scorer")
                return []
            return [_spec("icontains" if base.startswith("i") else "contains", item, False) for item in items]
        if base in _JUDGED and isinstance(value, str) and value.strip():
            return [self._judge(base, value, negate, raw, grader)]
        self.log.skip(where, _WHY.get(base) or (
            "the assertion has no value to compare with" if base in _SIMPLE or base in _LIST_TYPES else
            f"promptlab has no {base!r} scorer: write a python scorer ({{type: python, value: module:function}})"))
        return []

    def _judge(self, base: str, value: str, negate: bool, raw: dict, grader: str | None) -> dict:
        model = _provider_id(raw.get("provider")) or grader or self.grader or DEFAULT_GRADER
        if base in ("factuality", "model-graded-factuality"):
            value = f"The answer is factually consistent with this reference: {value}"
            self.log.note(f"{base}: graded by a judge with the rubric 'factually consistent with <reference>' "
                          "(promptfoo's factuality prompt sorts answers into five categories)")
        if raw.get("rubricPrompt"):
            self.log.skip(f"{base} rubricPrompt", "promptlab's judge uses its own grading prompt")
        self.judged = True
        spec = {"type": "judge", "value": value, "model": model}
        threshold = raw.get("threshold")
        if isinstance(threshold, int | float) and not isinstance(threshold, bool) and 0 <= threshold <= 1:
            spec["threshold"] = threshold
        if negate:
            spec["negate"] = True
        return spec

    def _python(self, raw: dict, negate: bool, where: str) -> list[dict]:
        value = raw.get("value")
        if not isinstance(value, str) or not value.strip():
            self.log.skip(where, "a python assertion needs code or file://path.py[:function] as its value")
            return []
        name, why = self.shims.python_assert(value, raw.get("config") or {}, raw.get("threshold"), negate, self.src)
        if name is None:
            self.log.skip(where, why)
            return []
        return [{"type": "python", "value": name}]

    def _assert_set(self, raw: dict, vars_: dict[str, Any], where: str, grader: str | None) -> list[dict]:
        if raw.get("threshold") not in (None, 1, 1.0) or raw.get("weight") not in (None, 1, 1.0):
            self.log.skip(where, "an assert-set with a threshold or weight (some may fail) has no scorer spec; "
                          "promptlab's list of scorers needs every one to pass")
            return []
        children = raw.get("assert") if isinstance(raw.get("assert"), list) else []
        return self.specs([(f"{where}[{i}]", child) for i, child in enumerate(children)], vars_, grader)

    def _resolve_ref(self, raw: Any, where: str) -> Any:
        if not (isinstance(raw, dict) and "$ref" in raw):
            return raw
        node: Any = self.config
        for part in str(raw["$ref"]).lstrip("#").strip("/").split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        if node is None:
            self.log.skip(where, f"$ref {raw['$ref']!r} points at nothing in the config")
        return node

    def _value(self, value: Any, vars_: dict[str, Any], where: str) -> Any:
        ref = self.src.ref(value)
        if ref is not None:
            paths = self.src.paths(ref)
            if len(paths) != 1 or paths[0].suffix.lower() in (".py", ".js", ".ts", ".mjs", ".cjs"):
                self.log.skip(where, f"value {value}: " + ("no such file" if not paths else
                              "a value computed by a script is not converted"))
                return _SKIP
            path = paths[0]
            value = self.src.data(path) if path.suffix.lower() in (".json", ".yaml", ".yml") else \
                self.src.text(path).strip("\n")
        return self._render(value, vars_, where)

    def _render(self, value: Any, vars_: dict[str, Any], where: str) -> Any:
        """Fill ``{{ var }}`` in a value with the test's variables, as promptfoo renders assertion values."""
        if isinstance(value, list):
            return [self._render(item, vars_, where) for item in value]
        if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
            return value
        try:
            return render_template(value, vars_)
        except Exception as exc:  # noqa: BLE001 - a user's template may fail any way; say which and why
            self.log.skip(where, f"the value {value!r} does not render with the test's variables ({exc})")
            return _SKIP


_SKIP = object()


def _mapping(text: Any) -> dict | None:
    """A schema written as JSON or YAML text (a CSV cell: ``is-json: {"type": "object"}``), or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, dict) else None


def _spec(kind: str, value: Any, negate: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind}
    if value is not None:
        spec["value"] = value
    if negate:
        spec["negate"] = True
    return spec


_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


def _regex(pattern: str, log: Log) -> str:
    """A JavaScript pattern as a python one that matches the same: case-sensitive, ``(?<name>`` as ``(?P<name>``."""
    pattern = _NAMED_GROUP.sub("(?P<", pattern)
    if re.search(r"[A-Za-z]", re.sub(r"\\.", "", pattern)):
        log.note("regex: promptfoo's patterns are case-sensitive and promptlab's regex scorer ignores case, so "
                 "patterns with letters are written (?-i:...) to match as in promptfoo")
        return f"(?-i:{pattern})"
    return pattern


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _provider_id(provider: Any) -> str | None:
    """A grader's promptlab model id from ``provider`` (an id, ``{id}``, or ``{text: {id}}``)."""
    if isinstance(provider, dict):
        provider = provider.get("id") or (provider.get("text") or {}).get("id")
    if not isinstance(provider, str):
        return None
    return model_id_of(provider)[0]


def grader_of(options: dict[str, Any] | None) -> str | None:
    """The grader model a test's (or defaultTest's) ``options.provider`` names, as a promptlab id."""
    return _provider_id(options.get("provider")) if isinstance(options, dict) else None


# ---- transforms ---------------------------------------------------------------------------------------------
_TRIM = re.compile(r"^\s*(?:return\s+)?output\s*\.\s*trim\s*\(\s*\)\s*;?\s*$")
_JSON_PATH = re.compile(r"^\s*(?:return\s+)?JSON\s*\.\s*parse\s*\(\s*output\s*\)((?:\s*(?:\.\s*\w+|\[\s*(?:\d+|'[^']*'|"
                        r"\"[^\"]*\")\s*\]))+)\s*;?\s*$")
_STEP = re.compile(r"\.\s*(\w+)|\[\s*(\d+)\s*\]|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")


def convert_transform(raw: Any, where: str, src: Source, shims: Shims) -> dict[str, str] | None:
    """A promptfoo output transform as the eval file's ``transform`` (regex, json_path or python), or None."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    ref = src.ref(raw)
    if ref is not None:
        match = re.fullmatch(r"(.+?\.py)(?::(\w+))?", ref)
        if not match:
            src.log.skip(f"{where} {raw}", "a JavaScript transform file: convert by hand to a python function "
                         "(transform: {python: module:function}, called with the answer text)")
            return None
        paths = src.paths(match[1])
        if not paths:
            src.log.skip(f"{where} {raw}", "no such file (paths are relative to the promptfoo config)")
            return None
        src.log.note(f"{where} {raw}: called with an empty context (promptlab transforms see the answer only)")
        return {"python": shims.transform(paths[0], match[2] or "get_transform")}
    if _TRIM.match(raw):
        return {"regex": r"^\s*([\s\S]*?)\s*$"}
    json_path = _JSON_PATH.match(raw)
    if json_path:
        steps = []
        for name, index, single, double in _STEP.findall(json_path[1]):
            steps.append(f".{name}" if name else f"[{index}]" if index else f"['{single or double}']")
        return {"json_path": "$" + "".join(steps)}
    src.log.skip(f"{where} {_short(raw)}", "JavaScript is not run: convert by hand to a python function "
                 "(transform: {python: module:function}), a regex (transform: {regex: ...}) or a JSON path")
    return None


def _short(text: str, limit: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit] + "…"


# ---- metrics ------------------------------------------------------------------------------------------------
def map_metrics(metric_names: dict[str, int], derived: Any, has_labels: bool, log: Log) -> list[str]:
    """Map named and derived metrics onto promptlab's; returns the classification metrics the run should show."""
    mapped: list[str] = []
    derived_inputs: set[str] = set()
    for number, item in enumerate(derived if isinstance(derived, list) else []):
        name = str(item.get("name", f"derivedMetrics[{number}]")) if isinstance(item, dict) else str(item)
        formula = str(item.get("value", "")) if isinstance(item, dict) else ""
        derived_inputs |= set(re.findall(r"[A-Za-z_]\w*", formula))
        if _CLASSIFICATION_WORDS.search(name) or _CLASSIFICATION_WORDS.search(formula):
            if has_labels:
                mapped.append(name)
            else:
                log.skip(f"derivedMetrics {name!r}", "classification metrics need one expected label per test "
                         "(an `equals` assertion or `__expected` value); these tests have none")
        else:
            log.skip(f"derivedMetrics {name!r}", "a formula over named metrics is not computed: derive it from "
                     "results.df (one row per call, with `passed` and `score`)")
    if mapped:
        log.note(f"derivedMetrics {', '.join(map(repr, mapped))} → Results.classification(): per-label precision, "
                 "recall and F1, macro and micro F1 and Cohen's kappa with bootstrap intervals, read from each "
                 "case's expected label and the suite's labels")
    for name, count in metric_names.items():
        if _ACCURACY_WORDS.match(name):
            log.note(f"metric {name!r} → promptlab's accuracy: the pass rate of whole cases (every scorer of a case "
                     "passes), per variant, with its interval")
        elif name in derived_inputs and mapped:
            continue  # an input of a derived metric mapped above: the classification metrics replace it
        else:
            log.skip(f"metric {name!r} ({count} assertion{'s' * (count != 1)})", "promptlab keeps one verdict per "
                     "case, not named sub-scores; the assertions are converted and the name is kept in each "
                     "case's metadata (promptfoo_metrics)")
    return mapped
