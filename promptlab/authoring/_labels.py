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


# The built-in scorers a case may name (``scorer: json``) and whether each compares with ``expected``.
# `promptlab.evaluation`'s BUILTIN_SCORERS implements exactly these (a test holds the two together).
BUILTIN_SCORER_NAMES: dict[str, bool] = {
    "exact": True, "contains": True, "any_of": True, "regex": True, "json": False, "numeric": True,
}


def builtin_needs_expected(name: str) -> bool:
    """Whether the built-in scorer a case names (``scorer: json``) compares with the case's ``expected``.

    Raises:
        UnknownNameError: no built-in scorer has that name (the message suggests the closest names).
    """
    if name not in BUILTIN_SCORER_NAMES:
        close = difflib.get_close_matches(name, BUILTIN_SCORER_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(BUILTIN_SCORER_NAMES))
        raise UnknownNameError(f"no built-in scorer is named {name!r}.{hint} Known: {known}.")
    return BUILTIN_SCORER_NAMES[name]
