"""Prompt files: the article's YAML format, loaded into an immutable, content-hashed `Prompt`.

A prompt file looks like this (every key but ``name``, ``version``, ``model`` and ``system`` is optional)::

    name: sentiment_classifier
    version: 2.1.0
    model: claude-3-5-sonnet-20241022   # pinned, dated id
    temperature: 0.0
    max_tokens: 10
    system: |
      You are a sentiment classifier ...
    template: "Text: {{ input }}"         # the user message; jinja2, sandboxed
    few_shot_examples:
      - input: "I love this product!"
        output: positive
    stop: ["\\n"]
    changelog:
      - version: 2.1.0
        date: 2024-01-15
        changes: Added handling for mixed sentiment
    metadata: {owner: growth-team}

Texts are normalised on load (trailing spaces on each line and blank lines at either end are dropped), so a
whitespace-only edit of the file changes neither the rendered request nor the content hash.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import math
import re
import string
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property, lru_cache, wraps
from pathlib import Path
from typing import Any

import yaml
from jinja2 import ChainableUndefined, StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .._yaml import key_line, load_yaml, looks_tabular, read_text
from ..errors import MissingVariablesError, PromptFileError, RenderError, TemplateLimitError
from ..providers._base import Message, Request

DEFAULT_TEMPLATE = "{{ input }}"


# ---- the template sandbox and its resource limits ----------------------------------------------------------
# Every template renders before the first model call, so one template that builds a gigabyte string or loops
# a hundred million times would stall a whole run. The sandbox (jinja2's immutable sandbox: no Python
# internals, no mutation of lists or dicts) is given limits on size, loop iterations and time. Checks run in
# the hooks the sandbox offers (operators, calls, attribute and item reads), in every filter, in `range`, and
# at every loop iteration (a guard wrapped around each loop's iterable when the template is compiled).

@dataclass(frozen=True)
class RenderLimits:
    """Resource limits of one template render (one user message; few-shot turns render one by one).

    Attributes:
        max_chars: the rendered text, and any one string or list the template builds or reads, at most this
            long (4M characters is about a million tokens, past any model's context).
        max_loop_iterations: loop iterations in one render, all loops together; also the largest `range()`.
        max_seconds: wall time of one render.
        max_int_digits: the largest integer an operator may produce, in decimal digits.

    Change them for the process with ``promptlab.authoring._prompt.RENDER_LIMITS = RenderLimits(max_seconds=5)``.
    """

    max_chars: int = 4_000_000
    max_loop_iterations: int = 100_000
    max_seconds: float = 1.0
    max_int_digits: int = 4_300


RENDER_LIMITS = RenderLimits()
_WHERE = "promptlab.authoring._prompt.RENDER_LIMITS"


class _Budget:
    """What one render has used so far: loop iterations, and the deadline."""

    __slots__ = ("limits", "iterations", "deadline")

    def __init__(self, limits: RenderLimits):
        self.limits = limits
        self.iterations = 0
        self.deadline = time.perf_counter() + limits.max_seconds

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TemplateLimitError(
                f"the template ran longer than {self.limits.max_seconds:g} s ({_WHERE}.max_seconds): it does too "
                "much work for a prompt (deep macro recursion, or long loops over large data). Simplify it.",
                "max_seconds")

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.max_loop_iterations:
            raise TemplateLimitError(
                f"the template's loops ran more than {self.limits.max_loop_iterations:,} iterations in one render "
                f"({_WHERE}.max_loop_iterations), all loops together (nested loops multiply). Loop over the "
                "case's own data, not over large ranges.", "max_loop_iterations")
        self.tick()


_BUDGET: ContextVar[_Budget | None] = ContextVar("promptlab_render_budget", default=None)


def _limits() -> RenderLimits:
    budget = _BUDGET.get()
    return budget.limits if budget is not None else RENDER_LIMITS


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


def _too_long(what: str, size: int) -> TemplateLimitError:
    limit = _limits().max_chars
    return TemplateLimitError(
        f"the template would build {what}: {size:,} characters (or items), over the limit of {limit:,} "
        f"({_WHERE}.max_chars). Build only what the model should read; raise the limit only if a prompt truly "
        "needs more.", "max_chars")


def _check_size(value: Any, what: str = "a value") -> Any:
    """Refuse a string or collection longer than ``max_chars`` (the value itself is returned)."""
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)) and len(value) > _limits().max_chars:
        raise _too_long(what, len(value))
    return value


def _check_bound(size: float, what: str) -> None:
    if size > _limits().max_chars:
        raise _too_long(what, int(min(size, 10**18)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_SIZED = (str, bytes, list, tuple)
_PRINTF_FIELD = re.compile(r"%[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(fmt: str, args: Any) -> None:
    """``'%1000000000s' % x``: refuse widths and precisions that alone would pass the size limit."""
    total = 0
    for match in _PRINTF_FIELD.finditer(fmt):
        total += sum(int(group) for group in match.groups() if group and group != "*")
        if "*" in match.groups():
            values = args if isinstance(args, tuple) else (args,)
            total += sum(value for value in values if _is_int(value))
    _check_bound(total, "a %-formatted text")


def _check_format(fmt: str, args: tuple, kwargs: dict) -> None:
    """``'{:>1000000000}'.format(x)``: refuse format-spec widths that alone would pass the size limit."""
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(fmt) if spec]
    except ValueError:
        return  # str.format itself reports the malformed format string
    total = sum(int(number) for spec in specs for number in re.findall(r"\d+", spec))
    if any("{" in spec for spec in specs):  # nested widths ('{:>{w}}') come from the arguments
        total += sum(value for value in (*args, *kwargs.values()) if _is_int(value))
    _check_bound(total, "a formatted text")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``**``, ``+`` and ``%`` whose result would pass a limit, before computing it."""
    if operator == "*":
        if _is_int(left) and _is_int(right):
            _check_digits((abs(left).bit_length() + abs(right).bit_length()) * math.log10(2), f"{left!r} * {right!r}")
        elif isinstance(left, _SIZED) and _is_int(right):
            _check_bound(len(left) * right, f"{_shorten(repr(left), 40)} * {right!r}")
        elif _is_int(left) and isinstance(right, _SIZED):
            _check_bound(left * len(right), f"{left!r} * {_shorten(repr(right), 40)}")
    elif operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        _check_digits(right * math.log10(abs(left)), f"{left!r} ** {right!r}")
    elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        _check_bound(len(left) + len(right), "a joined sequence")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right)


def _check_digits(digits: float, expression: str) -> None:
    limit = _limits().max_int_digits
    if digits > limit:
        raise TemplateLimitError(
            f"{_shorten(expression)} would have about {digits:,.0f} digits, over the limit of {limit:,} "
            f"({_WHERE}.max_int_digits). A prompt has no use for such a number.", "max_int_digits")


def _check_str_method(name: str, text: str, args: tuple, kwargs: dict) -> None:
    """Refuse str methods whose result would pass the size limit (padding, joining, replacing, tabs)."""
    first = args[0] if args else kwargs.get("width")
    if name in ("center", "ljust", "rjust", "zfill") and _is_int(first):
        _check_bound(first, f"a text padded by .{name}()")
    elif name == "expandtabs":
        tabsize = first if _is_int(first) else kwargs.get("tabsize", 8)
        _check_bound(len(text) + text.count("\t") * max(tabsize, 0), "a text with tabs expanded")
    elif name == "join" and hasattr(first, "__len__"):
        _check_bound(len(text) * max(len(first) - 1, 0), "a joined text")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_replace(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "translate" and isinstance(first, dict):
        longest = max((len(v) for v in first.values() if isinstance(v, str)), default=1)
        _check_bound(len(text) * longest, "a translated text")


def _check_replace(text: str, old: str, new: str, count: Any) -> None:
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if _is_int(count) and count >= 0:
        occurrences = min(occurrences, count)
    _check_bound(len(text) + occurrences * max(len(new) - len(old), 0), "a text with replacements")


def _check_values(args: tuple, kwargs: dict, where: str) -> None:
    """No call or filter is handed a string or collection past the size limit (a doubling namespace value)."""
    for value in (*args, *kwargs.values()):
        _check_size(value, f"an argument of {where}")


def _check_filter(name: str, args: tuple, kwargs: dict) -> None:
    """Filter-specific bounds, for filters whose output can outgrow their input."""
    value, rest = (args[0], args[1:]) if args else (None, ())
    first = rest[0] if rest else None
    if name == "center" and _is_int(first):
        _check_bound(first, "a centred text")
    elif name == "indent" and isinstance(value, str):
        width = first if first is not None else kwargs.get("width", 4)
        per_line = width if _is_int(width) else len(str(width))
        _check_bound(len(value) + (value.count("\n") + 1) * per_line, "an indented text")
    elif name == "wordwrap" and isinstance(value, str):
        width = first if _is_int(first) else kwargs.get("width", 79)
        wrap = kwargs.get("wrapstring") or (rest[2] if len(rest) > 2 else None) or "\n"
        lines = len(value) / max(int(width), 1) + value.count("\n") + 1
        _check_bound(len(value) + lines * len(str(wrap)), "a wrapped text")
    elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
        _check_replace(value, str(rest[0]), str(rest[1]), rest[2] if len(rest) > 2 else kwargs.get("count"))
    elif name == "join" and hasattr(value, "__len__"):
        separator = first if first is not None else kwargs.get("d", "")
        _check_bound(len(str(separator)) * len(value), "a joined text")
    elif name == "format" and isinstance(value, str):
        _check_printf(value, tuple(rest) or tuple(kwargs.values()))
    elif name == "batch" and _is_int(first) and (len(rest) > 1 or "fill_with" in kwargs):
        _check_bound(first, "a filled batch")
    elif name == "tojson" and _is_int(kwargs.get("indent", first)) and kwargs.get("indent", first) > 100:
        raise TemplateLimitError(f"tojson(indent={kwargs.get('indent', first)!r}) indents by more than 100 spaces, "
                                 "which multiplies the text's size. Use a small indent.", "max_chars")
    elif name == "slice" and _is_int(first) and first > _limits().max_loop_iterations:
        raise TemplateLimitError(f"slice({first:,}) makes more slices than the loop limit of "
                                 f"{_limits().max_loop_iterations:,} ({_WHERE}.max_loop_iterations).",
                                 "max_loop_iterations")


def _limited_filter(name: str, func: Any) -> Any:
    """A filter that checks its arguments before, and its result after, it runs."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # context/environment first

    @wraps(func)
    def limited(*args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_values(args[skip:], kwargs, f"the |{name} filter")
        _check_filter(name, args[skip:], kwargs)
        return _check_size(func(*args, **kwargs), f"the result of |{name}")

    return limited


def _limited_range(*args: int) -> range:
    """`range` whose length is at most the loop limit (jinja2's own cap is a fixed 100,000)."""
    numbers = range(*args)
    limit = _limits().max_loop_iterations
    if len(numbers) > limit:
        raise TemplateLimitError(
            f"range({', '.join(map(repr, args))}) has {len(numbers):,} numbers, over the loop limit of {limit:,} "
            f"({_WHERE}.max_loop_iterations). Loop over the case's own data, not over large ranges.",
            "max_loop_iterations")
    return numbers


def _guard_loop(iterable: Any) -> Any:
    """Wrapped around every loop's iterable at compile time: each iteration counts against the render's budget."""
    budget = _BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget.iterate()
        yield item


_LOOP_GUARD = "_promptlab_loop_guard"


class _LoopGuardCodeGenerator(CodeGenerator):
    """Compiles ``{% for x in items %}`` as ``{% for x in items|_promptlab_loop_guard %}``."""

    def visit_Template(self, node: nodes.Template, frame: Any = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_GUARD, [], [], None, None, lineno=loop.iter.lineno)
        super().visit_Template(node, frame)


class _LimitedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox with resource limits (see `RenderLimits`)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _LoopGuardCodeGenerator

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.filters = {name: _limited_filter(name, func) for name, func in self.filters.items()}
        self.filters[_LOOP_GUARD] = _guard_loop
        self.globals["range"] = _limited_range
        self.globals["lipsum"] = self._lipsum

    @staticmethod
    def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 (jinja's names)
        from jinja2.utils import generate_lorem_ipsum

        if n > 100 or max > 1000:
            raise TemplateLimitError(f"lipsum(n={n!r}, max={max!r}) asks for more filler text than the limit of "
                                     "100 paragraphs of 1,000 words.", "max_chars")
        return generate_lorem_ipsum(n, html, min, max)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Operators that can explode (``*``, ``**``, ``+``, ``%``) are checked before they run."""
        _tick()
        _check_binop(operator, left, right)
        return _check_size(super().call_binop(context, operator, left, right), f"the result of {operator!r}")

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Every call (macros, methods, globals) is a checkpoint; str methods that pad or repeat are bounded."""
        _tick()
        target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format in its own function
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            name = getattr(target, "__name__", "")
            if name in ("format", "format_map"):
                _check_format(owner, args, args[0] if name == "format_map" and args and isinstance(
                    args[0], dict) else kwargs)
            _check_str_method(name, owner, args, kwargs)
        _check_values(args, kwargs, f"the call of {getattr(obj, '__name__', type(obj).__name__)}")
        return _check_size(super().call(context, obj, *args, **kwargs), "the result of a call")

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Attribute reads are checkpoints, and no value read may pass the size limit (growing namespaces)."""
        _tick()
        return _check_size(super().getattr(obj, attribute), f"the value of .{attribute}")

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Item reads, like attribute reads."""
        _tick()
        return _check_size(super().getitem(obj, argument), "an item read")


# One sandboxed environment for every prompt: templates can reach their variables, never Python internals.
_JINJA = _LimitedSandbox(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=256)
def _compiled(template: str) -> Any:
    """Compile a template once per process (rendering a suite reuses it for every case)."""
    return _JINJA.from_string(template)


def render_template(template: str, variables: dict[str, Any], limits: RenderLimits | None = None) -> str:
    """Render a template in the limited sandbox, streaming so an oversized output stops as soon as it passes.

    Raises:
        TemplateLimitError: a limit of ``limits`` (default `RENDER_LIMITS`) was reached.
        Exception: whatever the template raises (undefined variables, sandbox violations ...).
    """
    budget = _Budget(limits or RENDER_LIMITS)
    token = _BUDGET.set(budget)
    try:
        chunks, size = [], 0
        for chunk in _compiled(template).generate(**variables):
            size += len(chunk)
            if size > budget.limits.max_chars:
                raise _too_long("a rendered text", size)
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)


def _trial_render(template: str) -> None:
    """Render once with every variable undefined-but-lenient: a template that passes a limit with no data at all
    (``{{ 'a' * 10**9 }}``, ``{% for i in range(10**9) %}``) is refused when the prompt is built. Other errors
    depend on the data and are left to the real render."""
    variables = {name: ChainableUndefined(name=name) for name in _variables(template)}
    try:
        render_template(template, variables)
    except TemplateLimitError:
        raise
    except Exception:  # noqa: BLE001 (data-dependent failures are reported when a case renders)
        pass


@lru_cache(maxsize=256)
def _variables(template: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_JINJA.parse(template)))


def _render_user(name: str, template: str, case_input: str | dict[str, Any],
                 variables: frozenset[str] | None = None) -> str:
    """Render one user message; every failure is a `RenderError` naming the prompt (see `Prompt.render_user`)."""
    values = case_input if isinstance(case_input, dict) else {"input": case_input}
    missing = (variables if variables is not None else _variables(template)) - set(values)
    if missing:
        raise MissingVariablesError(name, sorted(missing), list(values))
    try:
        return render_template(template, values)
    except TemplateLimitError as exc:
        raise TemplateLimitError(f"prompt {name!r} was stopped while rendering: {exc}", exc.limit) from None
    except Exception as exc:  # sandbox violations and template runtime errors alike
        raise RenderError(
            f"prompt {name!r} failed to render for input {_shorten(repr(case_input))}: {exc}. "
            "Check the template: it may only use the case's variables and plain filters."
        ) from None


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def normalize_text(text: str) -> str:
    """Drop trailing whitespace on every line and blank lines at both ends (whitespace-only edits are no-ops)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


class FewShotExample(BaseModel):
    """One demonstration: an input (text or template variables) and the answer the model should give."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str | dict[str, Any]
    output: str

    @field_validator("output")
    @classmethod
    def _normalize_output(cls, value: str) -> str:
        return normalize_text(value)


class ChangelogEntry(BaseModel):
    """One line of a prompt's history, newest first in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    date: dt.date | None = None
    author: str | None = None
    changes: str


class Prompt(BaseModel):
    """A versioned prompt: pinned model, parameters, system text, few-shot examples, template, changelog.

    Instances are immutable. `content_hash` covers what changes model behaviour (model, parameters, system,
    examples, template, stop sequences), not the name, version, changelog or metadata.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    model: str = Field(min_length=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, gt=0)
    system: str = ""
    template: str = DEFAULT_TEMPLATE
    few_shot_examples: tuple[FewShotExample, ...] = ()
    stop: tuple[str, ...] = ()
    changelog: tuple[ChangelogEntry, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `version: 2.1` as a float; a version is a label, so keep its text.
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("system", "template")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_text(value)

    @field_validator("template")
    @classmethod
    def _template_compiles(cls, value: str) -> str:
        try:
            _JINJA.parse(value)
        except TemplateSyntaxError as exc:
            raise ValueError(f"template is not valid jinja2 (line {exc.lineno}: {exc.message})") from None
        try:
            _trial_render(value)
        except TemplateLimitError as exc:
            raise ValueError(f"template refused: even with no data, {exc}") from None
        return value

    @field_validator("few_shot_examples")
    @classmethod
    def _examples_render(cls, value: tuple[FewShotExample, ...], info: ValidationInfo) -> tuple[FewShotExample, ...]:
        # Every request renders every few-shot example, so an example that cannot render fails every case:
        # refuse it now, when the prompt is built, rather than on each call of the run.
        template = info.data.get("template")
        if template is None:  # the template itself was refused; that error says enough
            return value
        for number, example in enumerate(value):
            try:
                _render_user(str(info.data.get("name", "?")), template, example.input)
            except RenderError as exc:
                raise ValueError(f"example {number} does not render: {exc}") from None
        return value

    # ---- identity -------------------------------------------------------------------------------------
    @property
    def ref(self) -> str:
        """``name@version``, the prompt's human-readable identity."""
        return f"{self.name}@{self.version}"

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the behaviour-defining fields, canonically serialised."""
        fields = self.model_dump(
            mode="json", include={"model", "temperature", "max_tokens", "system", "template",
                                  "few_shot_examples", "stop"}
        )
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @cached_property
    def variables(self) -> frozenset[str]:
        """The template variables the user message needs."""
        return _variables(self.template)

    # ---- rendering ------------------------------------------------------------------------------------
    def render_user(self, case_input: str | dict[str, Any]) -> str:
        """Render the user message for one input in the limited sandbox (`RENDER_LIMITS`).

        Raises:
            MissingVariablesError: the input lacks variables the template uses (all listed).
            TemplateLimitError: the render went past a size, loop or time limit.
            RenderError: anything else the template raised (a sandbox violation, a runtime error).
        """
        return _render_user(self.name, self.template, case_input, self.variables)

    def render(self, case_input: str | dict[str, Any], *, model: str | None = None) -> Request:
        """Build the provider-neutral request: system, few-shot turns, then the rendered user message."""
        messages: list[Message] = []
        for example in self.few_shot_examples:
            messages.append(Message("user", self.render_user(example.input)))
            messages.append(Message("assistant", example.output))
        messages.append(Message("user", self.render_user(case_input)))
        return Request(
            model=model or self.model,
            system=self.system,
            messages=tuple(messages),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=self.stop,
        )

    def with_changes(self, **changes: Any) -> Prompt:
        """A new `Prompt` with some fields replaced and validated (the original stays as it was)."""
        return Prompt.model_validate({**self.model_dump(), **changes})

    def to_yaml(self) -> str:
        """The prompt as YAML text in the file format (loads back to an equal prompt)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        data = {"name": self.name, "version": self.version, "model": self.model, **data}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path) -> Path:
        """Write the prompt as a YAML file and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return (f"Prompt({self.ref!r}, model={self.model!r}, examples={len(self.few_shot_examples)}, "
                f"hash={self.content_hash!r})")

    def _repr_html_(self) -> str:
        from .._display import prompt_html

        return prompt_html(self)


_PROMPT_FORMAT = "A prompt file is YAML text (.yaml, .yml) with name, version, model, system and template."
_TABLE_SUFFIXES = {".csv": "a CSV file", ".tsv": "a TSV file", ".xlsx": "an Excel workbook",
                   ".xls": "an Excel workbook", ".jsonl": "a JSONL file (a suite?)", ".parquet": "a Parquet file"}
_NESTED_MODELS = {"few_shot_examples": FewShotExample, "changelog": ChangelogEntry}


def load_prompt(path: str | Path) -> Prompt:
    """Load a prompt YAML file; errors name the file, the line, the field, the offending value and the fix.

    The file is read strictly (`promptlab._yaml`: size cap, bounded YAML aliases, no repeated keys), and
    the template is checked when the prompt is built (syntax, a trial render within `RENDER_LIMITS`, every
    few-shot example rendered).
    """
    path = Path(path)
    kind = _TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is not None:
        raise PromptFileError(f"prompt file {str(path)!r} is {kind}, not a prompt. {_PROMPT_FORMAT} "
                              "Load suites with pl.load_suite.")
    text = read_text(path, PromptFileError, "prompt file", accepted=_PROMPT_FORMAT)
    document = load_yaml(text, str(path), PromptFileError)
    data = document.data
    if not isinstance(data, dict):
        table = looks_tabular(text)
        hint = f" The file looks like {table}, not YAML." if table else ""
        raise PromptFileError(f"{path}: a prompt file must be a YAML mapping of fields, got "
                              f"{type(data).__name__} {_shorten(repr(data))}.{hint} Start the file with `name:`, "
                              "`version:`, `model:`.")
    try:
        return Prompt.model_validate(data)
    except ValidationError as exc:
        raise PromptFileError(_describe_validation(path, exc, document.node)) from None


def _describe_validation(path: Path, exc: ValidationError, node: yaml.Node | None) -> str:
    """One line per problem: ``file:line``, the field path, the offending value and what would fix it."""
    lines = [f"{path}: invalid prompt file ({exc.error_count()} problem(s)):"]
    for error in exc.errors():
        loc = tuple(error["loc"])
        field = ".".join(str(part) for part in loc) or "(file)"
        line = _line_of(node, loc[:-1] if error["type"] == "missing" else loc)
        where = f"{path}:{line}: " if line else ""
        if error["type"] == "extra_forbidden":
            allowed = list(_fields_at(loc))
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            lines.append(f"  - {where}{field}: unknown key (value {_shorten(repr(error['input']))}).{hint} "
                         f"Allowed keys: {', '.join(allowed)}.")
        elif error["type"] == "missing":
            lines.append(f"  - {where}{field}: required but missing. Add `{loc[-1]}:` "
                         f"{'to the file' if len(loc) == 1 else 'there'}.")
        elif error["type"] == "value_error":  # our own validators: the message names the value and the fix
            lines.append(f"  - {where}{field}: {error['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  - {where}{field}: {error['msg']} (got {_shorten(repr(error['input']))}).")
    return "\n".join(lines)


def _fields_at(loc: tuple) -> Any:
    """The keys allowed in the mapping that holds the last step of ``loc``."""
    model = _NESTED_MODELS.get(loc[0], Prompt) if len(loc) > 2 else Prompt
    return model.model_fields


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The line of the deepest part of ``loc`` found in the file (pydantic adds steps the file does not have)."""
    if not loc:
        return None  # the file as a whole: no single line
    for end in range(len(loc), 0, -1):
        line = key_line(node, *loc[:end])
        if line is not None:
            return line
    return None
