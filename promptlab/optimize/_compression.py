"""Prompt compression: small named rules that shorten a prompt, and `compress`, which applies them.

The rules follow the article (filler phrases, redundant instructions, a compact few-shot format) and add a
few more. Each is a plain function you can call and test on its own; text rules take and return a ``str``
and rewrite the **system text**, prompt rules take and return a `Prompt`. The template, the example inputs
and the example answers are data and are never reworded (`compact_few_shot` only moves the examples).
Every rule runs by default except those in `OPT_IN_RULES` (`compact_few_shot`), which you name to use.

==========================  ==========================================================================
rule                        what it does
==========================  ==========================================================================
drop_pleasantries           drops sentences that only thank, greet or wish luck
remove_filler_phrases       "Please note that", "It is important to", "I would like you to" … → gone
shorten_verbose_phrases     "in order to" → "to", "due to the fact that" → "because" …
drop_intensifiers           "very", "really", "extremely" … → gone
strip_markdown_emphasis     ``**bold**`` / ``__bold__`` → bold
compact_label_lists         "a, b, c, or d" → "a, b, c, d" (choice lists of single words)
drop_duplicate_sentences    the second copy of a sentence is dropped
drop_redundant_instructions a sentence whose content words all appear in one earlier sentence is dropped
drop_duplicate_examples     few-shot examples repeated with the same input and answer are dropped
compact_few_shot            few-shot chat turns → one ``input → answer`` line each (opt-in, see below)
collapse_whitespace         runs of spaces, spaces before punctuation, 3+ newlines, trailing spaces
==========================  ==========================================================================

`compress(prompt)` returns a `Compression`: the new `Prompt` (version ``<version>-compressed``, a changelog
entry naming the rules that changed it), the rules' effects, and the input tokens saved per request,
counted for each model by `promptlab.evaluation._cost.request_tokens` (the model's real tokenizer where promptlab has
it, else the documented approximation; the ``tokenizer`` column says which). Compression is only half of
the job: run both prompts on a suite and check `promptlab.optimize._noninferiority` before shipping.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..authoring._prompt import ChangelogEntry, FewShotExample, Prompt
from ..errors import CompressionError
from ..evaluation._cost import request_tokens
from ..providers import canonical_model_id, split_model_id
from ..providers._prices import prices

TextRule = Callable[[str], str]
PromptRule = Callable[[Prompt], Prompt]

FILLER_PHRASES: tuple[str, ...] = (
    "please note that", "it is important to note that", "it is important that you", "it is important to",
    "it's important to", "it should be noted that", "it is essential that you", "it is essential to",
    "i would like you to", "i'd like you to", "i want you to", "i need you to", "your task is to",
    "your job is to", "you are required to", "please make sure to", "please make sure that",
    "make sure to", "make sure that you", "be sure to", "please remember to", "remember to",
    "keep in mind that", "bear in mind that", "note that", "please ensure that you", "please", "kindly",
)
"""Phrases `remove_filler_phrases` deletes (case-insensitive, whole words, longest first)."""

VERBOSE_PHRASES: dict[str, str] = {
    "in order to": "to", "so as to": "to", "due to the fact that": "because",
    "owing to the fact that": "because", "in the event that": "if", "in the case that": "if",
    "at this point in time": "now", "at the present time": "now", "for the purpose of": "for",
    "with regard to": "about", "with regards to": "about", "in regard to": "about",
    "with respect to": "about", "in relation to": "about", "a large number of": "many",
    "the majority of": "most", "is able to": "can", "are able to": "can", "has the ability to": "can",
    "prior to": "before", "subsequent to": "after", "despite the fact that": "although",
    "in spite of the fact that": "although", "each and every": "every", "whether or not": "whether",
    "as well as": "and", "make sure that": "ensure", "in a timely manner": "promptly",
}
"""Wordy phrase → short equivalent, for `shorten_verbose_phrases`."""

INTENSIFIERS: tuple[str, ...] = ("very", "really", "extremely", "absolutely", "basically", "actually",
                                 "truly", "definitely", "certainly")
"""Words `drop_intensifiers` deletes."""

_PLEASANTRY = re.compile(
    r"^(?:(?:thank you|thanks|many thanks|i appreciate (?:it|your help)|good luck|have a (?:nice|great) day)"
    r"\b[^.!?]*|(?:hello|hi|hey)(?: there)?)[.!?,]*$", re.IGNORECASE)
_STOP_WORDS = frozenset(
    "a an the with in of to and or your you is are be only just exactly always must should this that it "
    "its as for on by each every all any remember please also make sure do your".split())
_SYNONYMS = {"respond": "answer", "reply": "answer", "output": "answer", "return": "answer",
             "single": "one", "category": "label", "class": "label", "categorize": "classify",
             "categorise": "classify", "words": "word", "answers": "answer", "labels": "label"}
_REDUNDANT_MIN_WORDS = 3
EXAMPLES_HEADER = "Examples:"
"""The line `compact_few_shot` puts above the moved examples."""
ARROW = " → "
"""What separates an example's input from its answer in the compact format (the same tokens as ``: ``
on the tokenizers measured, and it cannot be mistaken for part of the input)."""


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in ordered) + r")\b", re.IGNORECASE)


_FILLER = re.compile(_phrase_pattern(FILLER_PHRASES).pattern + r"[,:]?[ \t]*", re.IGNORECASE)
_VERBOSE = _phrase_pattern(VERBOSE_PHRASES)
_INTENSIFIER = re.compile(_phrase_pattern(INTENSIFIERS).pattern + r"[ \t]*", re.IGNORECASE)
_LABEL_LIST = re.compile(r"\b([\w-]+(?:, [\w-]+){1,}),? (?:or|and) ([\w-]+)(?=[.,;:!?)\n]|$)", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[ \t]+(?=\S)")
_MARK = "\x00"


# ---- helpers -----------------------------------------------------------------------------------------------
def _at_sentence_start(text: str, position: int) -> bool:
    before = text[:position].rstrip(" \t")
    return not before or before[-1] in ".!?:\n"


def _capitalize_marks(text: str) -> str:
    """Remove deletion marks; capitalise the word after a mark that stood at the start of a sentence."""
    def fix(match: re.Match[str]) -> str:
        nxt = match.group(1)
        return nxt.upper() if _at_sentence_start(match.string, match.start()) else nxt

    return re.sub(_MARK + "+" + r"(\w?)", fix, text)


def _tidy_line(line: str) -> str:
    """One line with runs of spaces collapsed, no space before punctuation or at the end; indentation kept."""
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    body = re.sub(r"[ \t]+([,.;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", line.strip(" \t")))
    body = re.sub(r",([.;:!?])", r"\1", body)  # "text, please." minus "please" leaves "text,."
    return indent + body if body else ""


def _tidy_spaces(text: str) -> str:
    """Spaces left behind by a deletion, line by line (see `_tidy_line`)."""
    return "\n".join(_tidy_line(line) for line in text.split("\n"))


def _same_case(original: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def _sentences(line: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(line) if s.strip()]


def _normalized(sentence: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", sentence.lower()))


def _content_words(sentence: str) -> frozenset[str]:
    words = (_SYNONYMS.get(w, w) for w in re.findall(r"[a-z0-9']+", sentence.lower()))
    return frozenset(w for w in words if w not in _STOP_WORDS)


def _filter_sentences(text: str, keep: Callable[[str, list[str]], bool]) -> str:
    """Drop sentences for which ``keep(sentence, earlier_sentences)`` is False; empty lines they leave go."""
    kept: list[str] = []
    lines = []
    for line in text.split("\n"):
        sentences = _sentences(line)
        if not sentences:
            lines.append(line)
            continue
        survivors = []
        for sentence in sentences:
            if keep(sentence, kept):
                survivors.append(sentence)
                kept.append(sentence)
        if survivors:
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            lines.append(indent + " ".join(s.strip() for s in survivors))
    return "\n".join(lines).strip("\n")


# ---- text rules (system text) ------------------------------------------------------------------------------
def collapse_whitespace(text: str) -> str:
    """Runs of spaces and tabs → one space, no space before punctuation, at most one blank line in a row,
    no trailing spaces. Indentation at the start of a line is kept (it may structure a list).

    >>> collapse_whitespace("Answer  with one word .\\n\\n\\n\\nNo prose.  ")
    'Answer with one word.\\n\\nNo prose.'
    """
    return re.sub(r"\n{3,}", "\n\n", _tidy_spaces(text)).strip("\n")


def remove_filler_phrases(text: str) -> str:
    """Delete `FILLER_PHRASES` ("Please note that", "It is important to", "I would like you to" …) and
    capitalise what then starts the sentence.

    >>> remove_filler_phrases("It is important to answer with one word. Please note that case matters.")
    'Answer with one word. Case matters.'
    """
    return _tidy_spaces(_capitalize_marks(_FILLER.sub(_MARK, text)))


def drop_pleasantries(text: str) -> str:
    """Drop sentences that only thank, greet or wish luck ("Thank you!", "Thanks in advance.").

    >>> drop_pleasantries("Answer with one word. Thanks in advance!")
    'Answer with one word.'
    """
    return _filter_sentences(text, lambda sentence, _: not _PLEASANTRY.match(sentence.strip()))


def shorten_verbose_phrases(text: str) -> str:
    """Replace wordy phrases by their short equivalents (`VERBOSE_PHRASES`), keeping a leading capital.

    >>> shorten_verbose_phrases("In order to help, reply in the event that it is unclear.")
    'To help, reply if it is unclear.'
    """
    return _VERBOSE.sub(lambda m: _same_case(m.group(0), VERBOSE_PHRASES[m.group(0).lower()]), text)


def drop_intensifiers(text: str) -> str:
    """Delete intensifiers (`INTENSIFIERS`: "very", "really", "extremely" …) that add tokens, not meaning.

    >>> drop_intensifiers("Be very careful: this is really important.")
    'Be careful: this is important.'
    """
    return _tidy_spaces(_capitalize_marks(_INTENSIFIER.sub(_MARK, text)))


def strip_markdown_emphasis(text: str) -> str:
    """``**bold**`` and ``__bold__`` → bold (models read the words, the asterisks cost tokens).

    >>> strip_markdown_emphasis("Answer with **exactly one** word.")
    'Answer with exactly one word.'
    """
    return re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)


def compact_label_lists(text: str) -> str:
    """Drop the final "or"/"and" (and the Oxford comma) of a list of three or more single words that ends
    a clause (punctuation or the end of the line follows), such as a list of labels to choose from.

    >>> compact_label_lists("Answer positive, negative, neutral, or mixed.")
    'Answer positive, negative, neutral, mixed.'
    """
    return _LABEL_LIST.sub(lambda m: f"{m.group(1)}, {m.group(2)}", text)


def drop_duplicate_sentences(text: str) -> str:
    """Drop a sentence that repeats an earlier one (same words, ignoring case and punctuation).

    >>> drop_duplicate_sentences("Answer in one word. Be brief.\\nAnswer in one word!")
    'Answer in one word. Be brief.'
    """
    return _filter_sentences(text, lambda s, earlier: _normalized(s) not in {_normalized(e) for e in earlier})


def _redundant(sentence: str, earlier: list[str]) -> bool:
    words = _content_words(sentence)
    return len(words) >= _REDUNDANT_MIN_WORDS and any(words <= _content_words(e) for e in earlier)


def drop_redundant_instructions(text: str) -> str:
    """Drop an instruction already given: a sentence whose content words (at least three, after stop words
    and synonyms such as respond/reply → answer are folded) all appear in one earlier sentence. Negations
    ("not", "never") count as content words, so "Never answer positive." is never dropped for repeating
    "Answer positive or negative."

    >>> drop_redundant_instructions("Answer with exactly one word: yes or no. Remember: reply with one word.")
    'Answer with exactly one word: yes or no.'
    """
    return _filter_sentences(text, lambda s, earlier: not _redundant(s, earlier))


# ---- prompt rules ------------------------------------------------------------------------------------------
def drop_duplicate_examples(prompt: Prompt) -> Prompt:
    """Drop few-shot examples that repeat an earlier one (same input and the same answer)."""
    seen: list[FewShotExample] = []
    for example in prompt.few_shot_examples:
        if example not in seen:
            seen.append(example)
    return prompt if len(seen) == len(prompt.few_shot_examples) else prompt.with_changes(
        few_shot_examples=[e.model_dump() for e in seen])


def compact_few_shot(prompt: Prompt) -> Prompt:
    """Move the few-shot examples from chat turns into the system text, one ``input → answer`` line each.

    Every example as a user and an assistant turn costs each turn's framing (role tokens, or the local
    model's ``Input:``/``Output:`` labels); one line each under ``Examples:`` costs the text and an arrow.
    The example inputs are rendered through the template first, so they read as the model will see inputs.
    """
    if not prompt.few_shot_examples:
        return prompt
    lines = [f"{prompt.render_user(e.input).strip()}{ARROW}{e.output}" for e in prompt.few_shot_examples]
    block = "\n".join([EXAMPLES_HEADER, *lines])
    system = f"{prompt.system}\n\n{block}" if prompt.system else block
    return prompt.with_changes(system=system, few_shot_examples=[])


# ---- the rule registry -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A named compression rule.

    Attributes:
        name: the rule's name (what the changelog lists).
        description: one line on what it does.
        apply: ``Prompt -> Prompt``; returns the prompt itself when nothing applies.
    """

    name: str
    description: str
    apply: PromptRule

    def __call__(self, prompt: Prompt) -> Prompt:
        return self.apply(prompt)


def text_rule(function: TextRule, name: str | None = None) -> Rule:
    """A `Rule` that rewrites the system text with ``function(text) -> text``; use it for your own rules.

    Args:
        function: the rewrite; its docstring's first line becomes the description.
        name: the rule's name; the function's name by default.
    """
    def apply(prompt: Prompt) -> Prompt:
        system = function(prompt.system)
        return prompt if system == prompt.system else prompt.with_changes(system=system)

    doc = (function.__doc__ or "").strip().split("\n")[0]
    return Rule(name or function.__name__, doc, apply)


def prompt_rule(function: PromptRule, name: str | None = None) -> Rule:
    """A `Rule` from a ``Prompt -> Prompt`` function (its docstring's first line is the description)."""
    doc = (function.__doc__ or "").strip().split("\n")[0]
    return Rule(name or function.__name__, doc, function)


RULES: dict[str, Rule] = {rule.name: rule for rule in (
    text_rule(drop_pleasantries), text_rule(remove_filler_phrases), text_rule(shorten_verbose_phrases),
    text_rule(drop_intensifiers), text_rule(strip_markdown_emphasis), text_rule(compact_label_lists),
    text_rule(drop_duplicate_sentences), text_rule(drop_redundant_instructions),
    prompt_rule(drop_duplicate_examples), prompt_rule(compact_few_shot), text_rule(collapse_whitespace),
)}
"""Every built-in rule by name, in the order `compress` applies them."""

OPT_IN_RULES: tuple[str, ...] = ("compact_few_shot",)
"""Rules `compress` applies only when named. `compact_few_shot` saves every example's turn framing on chat
models, but a base model that continues a transcript loses the pattern it imitates: on the local Gemma 3
270M, ``suites/sentiment.yaml`` went from 54.1% to 6.8% accuracy with it (sentiment 1.0.0, 74 cases)."""

DEFAULT_RULES: tuple[str, ...] = tuple(name for name in RULES if name not in OPT_IN_RULES)
"""The rules `compress` applies when none are named: every rule in `RULES` order, less `OPT_IN_RULES`."""


def resolve_rules(rules: Iterable[str | Rule | TextRule] | None) -> tuple[Rule, ...]:
    """Rules from names, `Rule` objects or plain ``str -> str`` functions (wrapped with `text_rule`).

    Raises:
        CompressionError: a name that is not in `RULES` (the message lists them).
    """
    if rules is None:
        return tuple(RULES[name] for name in DEFAULT_RULES)
    if isinstance(rules, (str, Rule)) or callable(rules):
        rules = [rules]
    return tuple(_resolve_rule(rule) for rule in rules)


def _resolve_rule(rule: str | Rule | TextRule) -> Rule:
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        if rule not in RULES:
            raise CompressionError(f"unknown compression rule {rule!r}. Known rules: {list(RULES)!r}; or "
                                   "pass a function str -> str (it rewrites the system text).")
        return RULES[rule]
    if callable(rule):
        return text_rule(rule)
    raise CompressionError(f"a rule must be a rule name, a Rule or a function str -> str; got {rule!r}.")


# ---- compress ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleEffect:
    """What one rule did: its name, whether it changed the prompt, and the characters it removed."""

    name: str
    changed: bool
    chars_saved: int


@dataclass(frozen=True, eq=False)
class Compression:
    """The result of `compress`: the compressed prompt, what each rule did, and the tokens saved.

    Attributes:
        original: the prompt compressed.
        prompt: the compressed prompt (the original itself when no rule changed anything).
        effects: one `RuleEffect` per rule tried, in order.
        savings: one row per model — ``model``, ``tokenizer`` (``tiktoken``, ``gemma`` or ``approx``),
            ``inputs`` (requests measured), ``tokens_before`` / ``tokens_after`` (mean input tokens per
            request), ``saved``, ``saved_pct``, ``usd_saved_per_1k_calls`` (input price × tokens saved × 1,000;
            NaN when the model is unpriced).
    """

    original: Prompt
    prompt: Prompt
    effects: tuple[RuleEffect, ...]
    savings: pd.DataFrame = field(repr=False)

    @property
    def changed(self) -> bool:
        """Whether any rule changed the prompt."""
        return self.prompt is not self.original

    @property
    def applied(self) -> tuple[str, ...]:
        """Names of the rules that changed the prompt."""
        return tuple(e.name for e in self.effects if e.changed)

    @property
    def variants(self) -> dict[str, Prompt]:
        """``{"A": original, "B": compressed}``, ready for ``pl.run(suite, c.variants, model)``."""
        return {"A": self.original, "B": self.prompt}

    def diff(self) -> str:
        """A unified diff of the two prompts' YAML."""
        lines = difflib.unified_diff(self.original.to_yaml().splitlines(), self.prompt.to_yaml().splitlines(),
                                     self.original.ref, self.prompt.ref, lineterm="")
        return "\n".join(lines)

    def __repr__(self) -> str:
        saved = ", ".join(f"{r.model} −{r.saved_pct:.1f}% ({r.tokenizer})" for r in self.savings.itertuples())
        return (f"<Compression {self.original.ref} → {self.prompt.ref}: {len(self.applied)} rules applied; "
                f"input tokens {saved or 'not measured'}>")

    def _repr_html_(self) -> str:
        from .._display import compression_html

        return compression_html(self)


def compress(prompt: Prompt, rules: Iterable[str | Rule | TextRule] | None = None, *,
             models: Sequence[str] | None = None, inputs: Iterable[Any] | None = None,
             suffix: str = "compressed", author: str = "promptlab.optimize.compress",
             date: dt.date | None = None) -> Compression:
    """Compress a prompt with named rules into a new version, and measure the input tokens it saves.

    Args:
        prompt: the prompt to compress (it is not changed).
        rules: rule names (see `RULES`), `Rule` objects or ``str -> str`` functions; `DEFAULT_RULES` if None.
        models: the models whose tokenizers count the savings; the prompt's own model if None. Use
            ``"local:gemma-3-270m"`` for the local model's tokenizer, an ``openai:`` id for tiktoken.
        inputs: case inputs (or a `Suite`) to render the requests with; the savings are the mean over them.
            None renders one request with empty inputs: exactly the prompt's fixed overhead per call.
        suffix: appended to the version: ``1.0.0`` → ``1.0.0-compressed``.
        author: the changelog entry's author.
        date: the changelog entry's date (today if None).

    Returns:
        A `Compression` with the new prompt (``.prompt``), the rules' effects and the token savings.

    Raises:
        CompressionError: not a Prompt, an unknown rule, or a rule that produced an invalid prompt.
    """
    if not isinstance(prompt, Prompt):
        raise CompressionError(f"compress() takes a Prompt, got {type(prompt).__name__} {prompt!r}. Load one with "
                               "pl.load_prompt(path).")
    current, effects = prompt, []
    for rule in resolve_rules(rules):
        after = _apply(rule, current)
        effects.append(RuleEffect(rule.name, after != current, _size(current) - _size(after)))
        current = after
    new = _new_version(prompt, current, tuple(effects), suffix, author, date) if current != prompt else prompt
    requests = _inputs(prompt, inputs)
    models = [canonical_model_id(m) for m in (models or [prompt.model])]
    return Compression(prompt, new, tuple(effects), token_savings(prompt, new, models, requests))


def _apply(rule: Rule, prompt: Prompt) -> Prompt:
    try:
        return rule(prompt)
    except CompressionError:
        raise
    except Exception as exc:
        raise CompressionError(f"compression rule {rule.name!r} failed on prompt {prompt.ref!r}: {exc}. "
                               "Leave the rule out (rules=[...]) or fix it.") from exc


def _size(prompt: Prompt) -> int:
    return len(prompt.system) + sum(len(str(e.input)) + len(e.output) for e in prompt.few_shot_examples)


def _new_version(original: Prompt, compressed: Prompt, effects: tuple[RuleEffect, ...], suffix: str,
                 author: str, date: dt.date | None) -> Prompt:
    version = f"{original.version}-{suffix}"
    applied = [e.name for e in effects if e.changed]
    idle = [e.name for e in effects if not e.changed]
    changes = (f"Compressed from {original.ref} (hash {original.content_hash}) by rules: {', '.join(applied)}"
               + (f"; no effect: {', '.join(idle)}" if idle else "") + ".")
    entry = ChangelogEntry(version=version, date=date or dt.date.today(), author=author, changes=changes)
    metadata = {**original.metadata, "compressed_from": {"version": original.version,
                                                         "hash": original.content_hash, "rules": applied}}
    return compressed.with_changes(version=version, changelog=[entry, *original.changelog], metadata=metadata)


def _inputs(prompt: Prompt, inputs: Iterable[Any] | None) -> list[Any]:
    if inputs is None:
        return ["" if prompt.variables <= {"input"} else {v: "" for v in prompt.variables}]
    values = [getattr(item, "input", item) for item in inputs]
    if not values:
        raise CompressionError(f"inputs={inputs!r} is empty; pass case inputs or a Suite, or None to measure "
                               "the prompt's fixed overhead.")
    return values


def _mean_tokens(prompt: Prompt, model_id: str, inputs: list[Any]) -> tuple[float, str]:
    name = split_model_id(model_id)[1]
    counted = [request_tokens(model_id, prompt.render(value, model=name)) for value in inputs]
    return sum(n for n, _ in counted) / len(counted), counted[0][1]


def token_savings(before: Prompt, after: Prompt, models: Sequence[str], inputs: list[Any]) -> pd.DataFrame:
    """Mean input tokens per request of two prompts on each model's tokenizer (see `Compression.savings`).

    Args:
        before: the original prompt.
        after: the compressed prompt.
        models: canonical model ids.
        inputs: the case inputs the requests are rendered with.
    """
    rows = []
    for model_id in models:
        old, method = _mean_tokens(before, model_id, inputs)
        new, _ = _mean_tokens(after, model_id, inputs)
        price = prices().get(model_id)
        usd = float(price.input) * (old - new) / 1000 if price is not None else float("nan")
        rows.append({"model": model_id, "tokenizer": method, "inputs": len(inputs), "tokens_before": old,
                     "tokens_after": new, "saved": old - new,
                     "saved_pct": 100 * (old - new) / old if old else float("nan"),
                     "usd_saved_per_1k_calls": usd})
    return pd.DataFrame(rows, columns=["model", "tokenizer", "inputs", "tokens_before", "tokens_after",
                                       "saved", "saved_pct", "usd_saved_per_1k_calls"])
