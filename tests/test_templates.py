"""The template sandbox's resource limits (issue 12, item 6): size, loop iterations, time; checked at load."""

from __future__ import annotations

import time

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

import promptlab as pl
from promptlab.authoring import _templates as templates_module
from promptlab.authoring._prompt import Prompt
from promptlab.authoring._templates import RenderLimits, render_template
from promptlab.errors import TemplateLimitError


def make(template: str) -> Prompt:
    return Prompt(name="t", version="1", model="local:gemma-3-270m", template=template)


def refused_fast(template: str, variables: dict | None = None, limit: str | None = None) -> TemplateLimitError:
    """Render directly (no load-time check) and return the limit error, asserting it came in well under 1 s."""
    started = time.perf_counter()
    with pytest.raises(TemplateLimitError) as info:
        render_template(template, variables or {"input": "x"})
    assert time.perf_counter() - started < 1.0
    if limit is not None:
        assert info.value.limit == limit, str(info.value)
    return info.value


@pytest.mark.parametrize("template, limit, fragment", [
    ("{{ 'a' * 10**9 }}", "max_chars", "'a' * 1000000000"),
    ("{% for i in range(10**9) %}x{% endfor %}", "max_loop_iterations", "range(1000000000) has 1,000,000,000"),
    ("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}", "max_loop_iterations",
     "loops ran more than 100,000 iterations"),
])
def test_the_issue_templates_are_refused_in_well_under_a_second(template, limit, fragment):
    error = refused_fast(template, limit=limit)
    assert fragment in str(error) and "promptlab.authoring._templates.RENDER_LIMITS" in str(error)
    # and the same templates are refused when the prompt is built, before any run
    started = time.perf_counter()
    with pytest.raises(ValueError, match="template refused: even with no data"):
        make(template)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("template, limit", [
    ("{{ 'a'|center(10**9) }}", "max_chars"),
    ("{{ 'a'.ljust(10**9) }}", "max_chars"),
    ("{{ '{:>999999999}'.format('a') }}", "max_chars"),
    ("{{ '%999999999s' % 'a' }}", "max_chars"),
    ("{{ ['a'] * 10**9 }}", "max_chars"),
    ("{{ 7 ** (10**8) }}", "max_int_digits"),
    ("{{ ('x' * 1000000)|replace('x', 'yyyyyyyy') }}", "max_chars"),
    ("{{ (', ' * 1000000).join(['a'] * 100000) }}", "max_chars"),
    ("{{ ('\\n' * 10**6)|indent('y' * 100) }}", "max_chars"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "max_chars"),
    ("{% for i in range(100000) %}{{ input }}{% endfor %}", "max_chars"),
    ("{{ range(10**6)|list|length }}", "max_loop_iterations"),
])
def test_other_ways_to_build_huge_values_are_refused(template, limit):
    refused_fast(template, {"input": "x" * 1000}, limit=limit)


def test_loops_over_the_case_data_count_too():
    refused_fast("{% for a in input %}{% for b in input %}{% endfor %}{% endfor %}", {"input": "x" * 10_000},
                 limit="max_loop_iterations")


def test_render_time_is_limited(monkeypatch):
    # exponential macro recursion: no loop, no big value, only time
    monkeypatch.setattr(templates_module, "RENDER_LIMITS", RenderLimits(max_seconds=0.2))
    template = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    started = time.perf_counter()
    with pytest.raises(TemplateLimitError,
                       match=r"ran longer than 0.2 s \(promptlab.authoring._templates.RENDER_LIMITS.max_seconds"):
        render_template(template, {})
    assert time.perf_counter() - started < 1.0


def test_limits_can_be_raised_for_the_process(monkeypatch):
    template = "{% for i in range(200000) %}{% endfor %}ok"
    with pytest.raises(TemplateLimitError):
        render_template(template, {})
    monkeypatch.setattr(templates_module, "RENDER_LIMITS", RenderLimits(max_loop_iterations=300_000))
    assert render_template(template, {}) == "ok"


def test_a_limit_hit_while_rendering_a_case_is_a_render_error_naming_the_prompt():
    prompt = make("{% for a in input %}{% for b in input %}.{% endfor %}{% endfor %}")
    with pytest.raises(pl.RenderError, match=r"prompt 't' was stopped while rendering: .*max_loop_iterations") as info:
        prompt.render("x" * 1000)
    assert isinstance(info.value, TemplateLimitError) and info.value.limit == "max_loop_iterations"


def test_the_sandbox_is_immutable():
    with pytest.raises(pl.RenderError):
        make("{{ input.append(1) }}").render({"input": [1]})


NORMAL_TEMPLATES = [
    ("Text: {{ input }}", {"input": "I love it"}),
    ("Subject: {{ subject }}\nMessage: {{ body|trim }}", {"subject": "Card", "body": "  expired  "}),
    ("{% for e in examples %}{{ loop.index }}. {{ e.q|upper }} -> {{ e.a }}\n{% endfor %}Q: {{ q }}",
     {"examples": [{"q": "hi", "a": "greeting"}, {"q": "bye", "a": "farewell"}], "q": "yo"}),
    ("{{ '%-8s|' % name }}{{ '{:>6}'.format(n) }} {{ n * 3 }} {{ 2 ** 10 }} {{ [1, 2] + [3] }} {{ 'ab' * 3 }}",
     {"name": "ann", "n": 42}),
    ("{% macro row(k, v) %}{{ k }}={{ v }}{% endmacro %}{% for k, v in d|dictsort %}{{ row(k, v) }};{% endfor %}",
     {"d": {"b": 2, "a": 1}}),
    ("{{ text|wordwrap(10) }}\n{{ text|truncate(12) }}\n{{ text|center(30) }}|{{ text|indent(2, true) }}",
     {"text": "the quick brown fox jumps"}),
    ("{% set ns = namespace(total=0) %}{% for x in xs if x > 1 %}{% set ns.total = ns.total + x %}{% endfor %}"
     "{{ ns.total }} {{ xs|join(', ') }} {{ xs|sum }} {{ range(3)|list }} {{ xs|tojson }}",
     {"xs": [1, 2, 3]}),
]


@pytest.mark.parametrize("template, variables", NORMAL_TEMPLATES)
def test_normal_templates_render_exactly_as_plain_jinja2(template, variables):
    reference = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    assert render_template(template, variables) == reference.from_string(template).render(**variables)


def test_a_long_but_reasonable_render_is_allowed():
    document = "lorem ipsum " * 100_000  # 1.2M characters: a long document in one prompt
    assert len(make("Summarise:\n{{ input }}").render_user(document)) == len(document) + len("Summarise:\n")


# ---- the substitution fast path (issue 20: rendering is on every call's path) ---------------------------------
# Reference: a plain jinja2 environment with the sandbox's options renders each template; the fast path must give
# byte-identical text, and every template it does not cover must still render through jinja.
_REFERENCE = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
_SUBSTITUTION_TEMPLATES = [
    "Text: {{ input }}", "{{ input }}", "", "plain text, no variables", "{{input}}{{ other }}",
    "Review:\n{{ input }}\n", "  {{- input -}}  \n tail", "{# a comment #}A {{ input }} B{# another #}",
    "{% raw %}{{ not a variable }}{% endraw %} {{ input }}", "{{ input }}\n\n", "é {{ input }} ✓\r\n{{ other }}",
]
_VALUES = ["positive", "", "line\nbreak", 3, 2.5, None, True, ["a", 1], {"k": "v"}, "{{ input }}", "é✓"]


@pytest.mark.parametrize("template", _SUBSTITUTION_TEMPLATES)
@pytest.mark.parametrize("value", _VALUES, ids=repr)
def test_the_substitution_fast_path_renders_exactly_what_jinja_renders(template, value):
    variables = {"input": value, "other": value}
    assert templates_module._substitutions(template) is not None  # the fast path is taken
    assert render_template(template, variables) == _REFERENCE.from_string(template).render(**variables)


@pytest.mark.parametrize("template", ["{{ input | upper }}", "{{ input.upper() }}", "{{ input[0] }}",
                                      "{{ input ~ 'x' }}", "{% if input %}y{% endif %}",
                                      "{% for c in input %}{{ c }}{% endfor %}", "{% set x = input %}{{ x }}",
                                      "{{ 'lit' }}"])
def test_templates_beyond_substitution_render_through_the_sandbox(template):
    assert templates_module._substitutions(template) is None
    assert render_template(template, {"input": "ab"}) == _REFERENCE.from_string(template).render(input="ab")


def test_the_fast_path_leaves_errors_and_limits_to_jinja():
    with pytest.raises(Exception, match="'other' is undefined"):  # a missing variable: jinja's StrictUndefined
        render_template("{{ input }} {{ other }}", {"input": "x"})

    class Unprintable:
        def __str__(self):
            raise ValueError("no text for this value")

    with pytest.raises(ValueError, match="no text for this value"):
        render_template("{{ input }}", {"input": Unprintable()})
    with pytest.raises(TemplateLimitError) as info:
        render_template("{{ input }}", {"input": "a" * 11}, RenderLimits(max_chars=10))
    assert info.value.limit == "max_chars" and "10" in str(info.value)
