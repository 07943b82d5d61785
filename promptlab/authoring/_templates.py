"""Templates: prompts' user messages rendered in jinja2's immutable sandbox, within resource limits.

Every template renders before the first model call, so one template that builds a gigabyte string or loops a
hundred million times would stall a whole run. The sandbox (no Python internals, no mutation of lists or dicts)
is given limits on size, loop iterations and time (`RenderLimits`; change them for the process with
``promptlab.authoring._templates.RENDER_LIMITS = RenderLimits(max_seconds=5)``).
"""

from __future__ import annotations

import math
import re
import string
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import MissingVariablesError, RenderError, TemplateLimitError

# Checks run in the hooks the sandbox offers (operators, calls, attribute and item reads), in every filter, in
# `range`, and at every loop iteration (a guard wrapped around each loop's iterable when the template is compiled).


@dataclass(frozen=True)
class RenderLimits:
    """Resource limits of one template render (one user message; few-shot turns render one by one).

    Attributes:
        max_chars: the rendered text, and any one string or list the template builds or reads, at most this
            long (4M characters is about a million tokens, past any model's context).
        max_loop_iterations: loop iterations in one render, all loops together; also the largest `range()`.
        max_seconds: wall time of one render.
        max_int_digits: the largest integer an operator may produce, in decimal digits.

    Change them for the process with ``promptlab.authoring._templates.RENDER_LIMITS = RenderLimits(max_seconds=5)``.
    """

    max_chars: int = 4_000_000
    max_loop_iterations: int = 100_000
    max_seconds: float = 1.0
    max_int_digits: int = 4_300


RENDER_LIMITS = RenderLimits()
_WHERE = "promptlab.authoring._templates.RENDER_LIMITS"


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


@lru_cache(maxsize=256)
def _substitutions(template: str) -> tuple[str, ...] | None:
    """A template that is only literal text and ``{{ name }}`` substitutions, as its parsed pieces — literal, name,
    literal, ..., literal — or None for any other template (filters, attributes, tags, expressions).

    Read from jinja's own parse tree, so whitespace control, comments, raw blocks and the trailing newline are
    exactly jinja's. Such a template renders to the literals joined with ``str()`` of each variable, which is the
    code jinja compiles for it (no autoescape, no finalize); `render_template` then skips the sandbox's machinery,
    a tenth of the cost on the per-call path (the usual ``"Text: {{ input }}"`` prompt is one)."""
    pieces = [""]
    for node in _JINJA.parse(template).body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pieces[-1] += child.data
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                pieces += [child.name, ""]
            else:
                return None
    return tuple(pieces)


def _substituted(pieces: tuple[str, ...], variables: dict[str, Any], max_chars: int) -> str | None:
    """`_substitutions` pieces filled from ``variables``; None when jinja must render instead (a variable is
    missing, its ``str()`` raises, or the text is past ``max_chars``), so every error is jinja's own."""
    filled = list(pieces)
    try:
        for index in range(1, len(pieces), 2):
            filled[index] = str(variables[pieces[index]])
    except Exception:  # noqa: BLE001 - the sandboxed render reports it, with jinja's message
        return None
    text = "".join(filled)
    return text if len(text) <= max_chars else None


def render_template(template: str, variables: dict[str, Any], limits: RenderLimits | None = None) -> str:
    """Render a template in the limited sandbox, streaming so an oversized output stops as soon as it passes.

    Raises:
        TemplateLimitError: a limit of ``limits`` (default `RENDER_LIMITS`) was reached.
        Exception: whatever the template raises (undefined variables, sandbox violations ...).
    """
    limits = limits or RENDER_LIMITS
    pieces = _substitutions(template)
    if pieces is not None and (text := _substituted(pieces, variables, limits.max_chars)) is not None:
        return text
    budget = _Budget(limits)
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
    variables = {name: ChainableUndefined(name=name) for name in template_variables(template)}
    try:
        render_template(template, variables)
    except TemplateLimitError:
        raise
    except Exception:  # noqa: BLE001 (data-dependent failures are reported when a case renders)
        pass


@lru_cache(maxsize=256)
def template_variables(template: str) -> frozenset[str]:
    """The variables a template reads (those it does not set itself)."""
    return frozenset(meta.find_undeclared_variables(_JINJA.parse(template)))


def check_template(template: str) -> None:
    """Refuse (RenderError, a ValueError) a template that is not valid jinja2, or passes a limit with no data."""
    try:
        _JINJA.parse(template)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template is not valid jinja2 (line {exc.lineno}: {exc.message})") from None
    try:
        _trial_render(template)
    except TemplateLimitError as exc:
        raise RenderError(f"template refused: even with no data, {exc}") from None


def render_user(name: str, template: str, case_input: str | dict[str, Any],
                variables: frozenset[str] | None = None) -> str:
    """Render one user message of prompt ``name``; every failure is a `RenderError` naming the prompt.

    Raises:
        MissingVariablesError: the input lacks variables the template uses (all listed).
        TemplateLimitError: the render went past a size, loop or time limit.
        RenderError: anything else the template raised (a sandbox violation, a runtime error).
    """
    values = case_input if isinstance(case_input, dict) else {"input": case_input}
    missing = (variables if variables is not None else template_variables(template)) - set(values)
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
