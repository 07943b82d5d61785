"""Few-shot moves of the prompt search: which pool examples a prompt shows, and in which order.

`fewshot_candidates(base, pool, ...)` makes no model call; it draws example sets from the pool (a `Suite` of
cases with expected labels) with four strategies, each seeded:

=========  =======================================================================================================
strategy   the examples
=========  =======================================================================================================
random     ``k`` pool cases drawn uniformly, ``n_random`` draws per ``k``
coverage   labels in turn (the prompt's label order), one random case per label per round, ``n_random`` draws per
           ``k``: which example stands for a label moves accuracy by points on small models
bootstrap  as coverage, but drawn only from ``demos``: the pool cases the model already answers correctly with
           the base prompt (`bootstrap_demos`, which makes the calls; DSPy's BootstrapFewShot idea)
similar    with an ``embed`` function: per label, the pool cases nearest to that label's mean embedding (its most
           typical examples); one set per ``k``
=========  =======================================================================================================

**Per-case nearest examples are not built.** A `Prompt` shows the same examples to every case, and a prompt built
by a Python function (`authoring._callable.CallablePrompt`) could choose per case but carries no declared
``output:`` (the label grammar the local model needs), no template and no few-shot field the other moves edit, and
its content hash covers its source, not the examples it would pick. So "similar" here means the examples most
typical of each label under the embedding — what one fixed prompt can hold.

`order_candidates(base, ...)` reorders the base's own examples (reversed, labels interleaved, seeded shuffles):
order alone changes small models' answers (recency bias).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..authoring._prompt import FewShotExample
from ..authoring._suite import Case, Suite
from ..errors import ArgumentError
from ..evaluation._results import Results
from ..evaluation._runner import run
from ._candidates import Candidate, derive

STRATEGIES = ("random", "coverage", "bootstrap", "similar")
"""The few-shot strategies `fewshot_candidates` knows."""

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]
"""Texts → one vector each (e.g. a sentence-transformers model's ``encode``)."""


# ---- the pool ---------------------------------------------------------------------------------------------------
def pool_examples(pool: Suite | Iterable[Case]) -> list[tuple[str, Case]]:
    """The pool as ``(label, case)`` pairs, in pool order; cases without one text label are refused.

    Raises:
        ArgumentError: the pool is not cases, is empty, or a case's ``expected`` is not one label.
    """
    cases = list(pool.cases if isinstance(pool, Suite) else pool)
    if not cases:
        raise ArgumentError("the few-shot pool is empty; pass a Suite of cases with expected labels (e.g. the "
                            "suite's train part, or pl.load_suite('train.yaml')).")
    pairs = []
    for case in cases:
        if not isinstance(case, Case):
            raise ArgumentError(f"the few-shot pool holds {type(case).__name__} {case!r}; pass a Suite (or Cases).")
        label = case.expected
        unusable = (isinstance(label, bool) or not isinstance(label, str | int | float) or str(label).strip() == ""
                    or (isinstance(label, float) and math.isnan(label)))
        if unusable:
            raise ArgumentError(f"pool case {case.id!r} has expected={label!r}; a few-shot example needs one label "
                                "as its answer. Give the case one expected label or leave it out of the pool.")
        pairs.append((str(label), case))
    return pairs


def as_example(label: str, case: Case) -> FewShotExample:
    """A pool case as a demonstration: its input, its expected label as the answer."""
    return FewShotExample(input=case.input, output=label)


def label_order(base: Candidate, pairs: Sequence[tuple[str, Case]]) -> list[str]:
    """Labels in the prompt's declared order (``output.labels``, else ``metadata.labels``), then any others in
    pool order — so coverage shows labels as the prompt lists them."""
    declared = base.prompt.output.labels if base.prompt.output is not None else None
    declared = declared or base.prompt.metadata.get("labels") or ()
    seen = [str(x) for x in declared]
    for label, _ in pairs:
        if label not in seen:
            seen.append(label)
    present = {label for label, _ in pairs}
    return [label for label in seen if label in present]


# ---- the strategies ----------------------------------------------------------------------------------------------
def draw_random(pairs: Sequence[tuple[str, Case]], k: int, rng: random.Random) -> list[tuple[str, Case]]:
    """``k`` pool cases drawn without replacement (all of them when the pool is smaller)."""
    return rng.sample(list(pairs), min(k, len(pairs)))


def draw_coverage(pairs: Sequence[tuple[str, Case]], k: int, rng: random.Random,
                  labels: Sequence[str]) -> list[tuple[str, Case]]:
    """Labels in turn, one random unused case per label per round, until ``k`` examples (or the pool) are used.

    With ``k`` below the number of labels, a random ``k`` of the labels are shown (in the prompt's order).
    """
    by_label = {label: rng.sample([p for p in pairs if p[0] == label], sum(p[0] == label for p in pairs))
                for label in labels}
    if k < len(labels):
        chosen = set(rng.sample(list(labels), k))
        labels = [label for label in labels if label in chosen]
    picked: list[tuple[str, Case]] = []
    while len(picked) < k and any(by_label[label] for label in labels):
        for label in labels:
            if by_label[label] and len(picked) < k:
                picked.append(by_label[label].pop())
    return picked


def draw_typical(pairs: Sequence[tuple[str, Case]], k: int, labels: Sequence[str],
                 vectors: Mapping[str, Sequence[float]]) -> list[tuple[str, Case]]:
    """Per label, the cases nearest (cosine) to the label's mean vector; labels in turn until ``k``."""
    ranked = {}
    for label in labels:
        members = [p for p in pairs if p[0] == label]
        centre = _mean([vectors[case.id] for _, case in members])
        ranked[label] = sorted(members, key=lambda p: -_cosine(vectors[p[1].id], centre))
    picked: list[tuple[str, Case]] = []
    for depth in range(max((len(v) for v in ranked.values()), default=0)):
        for label in labels:
            if depth < len(ranked[label]) and len(picked) < k:
                picked.append(ranked[label][depth])
    return picked


def _mean(rows: Sequence[Sequence[float]]) -> list[float]:
    return [sum(column) / len(rows) for column in zip(*rows, strict=True)]


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def input_text(value: str | dict[str, Any]) -> str:
    """A case input as one text for an embedding: the text itself, or ``key: value`` lines of its variables."""
    if isinstance(value, dict):
        return "\n".join(f"{key}: {item}" for key, item in value.items())
    return str(value)


def embed_pool(pairs: Sequence[tuple[str, Case]], embed: Embed) -> dict[str, list[float]]:
    """One vector per pool case, by case id (one batched call of ``embed``).

    Raises:
        ArgumentError: ``embed`` returned a different number of vectors, ragged vectors, or non-numbers.
    """
    texts = [input_text(case.input) for _, case in pairs]
    try:
        vectors = [[float(x) for x in row] for row in embed(texts)]
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"embed returned something that is not a list of number vectors ({exc}); it must map "
                            "a list of texts to one vector (list of floats) per text.") from None
    if len(vectors) != len(texts) or len({len(v) for v in vectors}) > 1:
        raise ArgumentError(f"embed returned {len(vectors)} vectors of lengths {sorted({len(v) for v in vectors})} "
                            f"for {len(texts)} texts; it must return one vector per text, all of one length.")
    return {case.id: vector for (_, case), vector in zip(pairs, vectors, strict=True)}


# ---- the candidates ----------------------------------------------------------------------------------------------
def fewshot_candidates(base: Candidate, pool: Suite | Iterable[Case], *, ks: Sequence[int] = (2, 4, 8),
                       n_random: int = 3, seed: int = 0,
                       strategies: Sequence[str] = ("random", "coverage", "bootstrap"),
                       embed: Embed | None = None, demos: Suite | Iterable[Case] | None = None) -> list[Candidate]:
    """Candidates that replace the base's few-shot examples with sets drawn from ``pool`` (no model call).

    Args:
        base: the candidate to start from (its system text, template and model are kept).
        pool: the cases examples are drawn from, each with one expected label (never the cases scored).
        ks: how many examples per set.
        n_random: seeded draws per ``k`` for ``random``, ``coverage`` and ``bootstrap``.
        seed: the seed of every draw (the same arguments give the same candidates).
        strategies: any of `STRATEGIES`. ``bootstrap`` is skipped when no (or empty) ``demos`` are given,
            ``similar`` when no ``embed`` is given (so the defaults work without a model call or an embedding model).
        embed: texts → vectors, for ``similar``.
        demos: the pool cases the model answered correctly (`bootstrap_demos(...).demos`), for ``bootstrap``.

    Returns:
        New candidates named ``fewshot:<strategy>:k<k>[:s<draw>]``; a set equal to the base's own examples, or to
        an earlier candidate's, is left out.

    Raises:
        ArgumentError: an unknown strategy, a ``k`` below 1, or a pool case without one label.
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    bad_k = [k for k in ks if not isinstance(k, int) or isinstance(k, bool) or k < 1]
    if unknown or bad_k or n_random < 1:
        raise ArgumentError(f"fewshot_candidates: strategies {unknown!r} unknown (use {list(STRATEGIES)!r}), ks "
                            f"{bad_k!r} not whole numbers >= 1, or n_random={n_random!r} < 1. Fix those arguments.")
    pairs = pool_examples(pool)
    labels = label_order(base, pairs)
    sets: list[tuple[str, list[tuple[str, Case]]]] = []
    for strategy in strategies:
        sets += _sets(strategy, base, pairs, labels, ks, n_random, seed, embed, demos)
    return _unique(base, [(name, [as_example(*p) for p in chosen]) for name, chosen in sets if chosen], "fewshot")


def _sets(strategy: str, base: Candidate, pairs: list[tuple[str, Case]], labels: list[str], ks: Sequence[int],
          n_random: int, seed: int, embed: Embed | None,
          demos: Suite | Iterable[Case] | None) -> list[tuple[str, list[tuple[str, Case]]]]:
    out = []
    if strategy == "similar":
        if embed is not None:
            vectors = embed_pool(pairs, embed)
            out = [(f"fewshot:similar:k{k}", draw_typical(pairs, k, labels, vectors)) for k in ks]
        return out
    if strategy == "bootstrap":
        demo_cases = list(demos.cases if isinstance(demos, Suite) else demos or ())
        if not demo_cases:  # no demos given, or the model answered no pool case correctly
            return out
        pairs = pool_examples(demo_cases)
        labels = label_order(base, pairs)
    for k in ks:
        for draw in range(n_random):
            # one stream per (strategy, k, draw): adding a k or a strategy leaves the other sets as they were
            rng = random.Random(f"{seed}:{strategy}:{k}:{draw}")
            chosen = (draw_random(pairs, k, rng) if strategy == "random"
                      else draw_coverage(pairs, k, rng, labels))
            out.append((f"fewshot:{strategy}:k{k}:s{draw}", chosen))
    return out


def _unique(base: Candidate, sets: list[tuple[str, list[FewShotExample]]], origin: str) -> list[Candidate]:
    """Candidates for the example lists that differ from the base's and from each other."""
    seen = {base.prompt.content_hash}  # examples may hold dicts (unhashable): compare prompts by content hash
    out = []
    for name, examples in sets:
        move = f"{name.split(':', 1)[1]}: {len(examples)} examples ({', '.join(e.output for e in examples)})"
        candidate = derive(base, name, origin, move, few_shot_examples=tuple(examples))
        if candidate.prompt.content_hash not in seen:
            seen.add(candidate.prompt.content_hash)
            out.append(candidate)
    return out


def order_candidates(base: Candidate, *, n_shuffles: int = 2, seed: int = 0) -> list[Candidate]:
    """Candidates showing the base's own examples in another order: reversed, labels interleaved, seeded shuffles.

    Returns an empty list when the base has fewer than two examples; orders equal to the base's are left out.
    """
    examples = list(base.prompt.few_shot_examples)
    if len(examples) < 2:
        return []
    orders = [("order:reversed", examples[::-1]), ("order:interleaved", _interleaved(examples))]
    for draw in range(n_shuffles):
        rng = random.Random(f"{seed}:order:{draw}")
        orders.append((f"order:shuffle:s{draw}", rng.sample(examples, len(examples))))
    return _unique(base, orders, "fewshot")


def _interleaved(examples: list[FewShotExample]) -> list[FewShotExample]:
    """Labels in turn (first label's first example, second label's first, …), so no label's examples cluster."""
    groups: dict[str, list[FewShotExample]] = {}
    for example in examples:
        groups.setdefault(example.output, []).append(example)
    out = []
    for depth in range(max(len(g) for g in groups.values())):
        out += [group[depth] for group in groups.values() if depth < len(group)]
    return out


# ---- bootstrapped demonstrations ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bootstrap:
    """What `bootstrap_demos` found: the pool cases answered correctly (``demos``) and the run behind it."""

    demos: Suite
    results: Results

    @property
    def calls(self) -> int:
        """Model calls the bootstrap made (answers from the response cache included)."""
        return len(self.results.df)

    def __repr__(self) -> str:
        return f"Bootstrap(demos={len(self.demos)} of {self.results.df['case_id'].nunique()} pool cases)"


def bootstrap_demos(base: Candidate, pool: Suite, model: Any = None, *, max_cases: int | None = None,
                    seed: int = 0, **run_options: Any) -> Bootstrap:
    """Run the base prompt on pool cases and keep those the model answers correctly, as demonstrations.

    Args:
        base: the candidate whose prompt answers the pool cases.
        pool: a `Suite` of cases with expected labels.
        model: the model to ask; default the base's model, else the prompt's own.
        max_cases: ask about at most this many pool cases (a seeded sample) to bound the calls.
        seed: the sample's seed.
        **run_options: passed to `pl.run` (``budget``, ``cache``, ``providers``, ``progress`` …).

    Returns:
        A `Bootstrap`: ``demos`` (a Suite of the cases whose answer passed; failed calls count as not passed) and
        the run's ``results``.
    """
    pool_examples(pool)  # refuse a pool without labels before spending calls
    asked = pool.sample(max_cases, seed=seed) if max_cases is not None and max_cases < len(pool) else pool
    results = run(asked, {"bootstrap": base.prompt}, model if model is not None else base.model, **run_options)
    frame = results.df
    passed = set(frame.loc[frame["passed"].fillna(False).astype(bool), "case_id"])
    return Bootstrap(asked.filter(lambda case: case.id in passed), results)
