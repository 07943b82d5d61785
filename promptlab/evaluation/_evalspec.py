"""`EvalSpec`: a loaded eval file, ready to run, compare against its baseline and check against its thresholds.

`promptlab.evaluation._evalfile` reads and checks the file and builds the spec; this module runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError
from ._plan import ModelConfig, PromptLike
from ._scorer_specs import CaseScorers
from ._transforms import Transform

if TYPE_CHECKING:
    from ..authoring._suite import Suite
    from ..providers._base import Provider
    from ..stats import Comparison
    from ._results import Results

# threshold name -> (what it reads, "min" or "max")
THRESHOLDS = {
    "accuracy": ("passed / calls; failed calls count as failures", "min"),
    "error_rate": ("the share of calls with no verdict (failed calls, scoring and transform errors)", "max"),
    "macro_f1": ("macro-F1 against the suite's labels", "min"),
    "micro_f1": ("micro-F1 against the suite's labels", "min"),
    "kappa": ("Cohen's kappa against the suite's labels", "min"),
}
_CLASSIFICATION = ("macro_f1", "micro_f1", "kappa")


@dataclass
class EvalSpec:
    """A whole evaluation, as an eval file describes it (see `promptlab.evaluation._evalfile`).

    Attributes:
        path: the eval file; ``folder`` is where its relative paths and python modules are found.
        variants: ``{id: Prompt or CallablePrompt}`` in file order.
        suite: the cases.
        models: the models (`ModelConfig`: canonical id, params, label), or None for each prompt's own pin.
        base_urls: provider name → the endpoint the file gives its models.
        params: the params grid; scorer: the scorer spec (None: exact, reading the suite's labels); transform.
        baseline: the variant the others are compared against; thresholds: ``{name: value}``; report: a path.
    """

    path: Path
    variants: dict[str, PromptLike]
    suite: Suite
    description: str = ""
    models: list[ModelConfig] | None = None
    base_urls: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    scorer: Any = None
    scorers: CaseScorers | None = None
    transform: Transform | None = None
    repeats: int = 1
    concurrency: int | None = None
    sample: int | None = None
    seed: int = 0
    baseline: str = ""
    thresholds: dict[str, float] = field(default_factory=dict)
    report: Path | None = None

    @property
    def folder(self) -> Path:
        """The eval file's folder: relative paths and python modules are found from here."""
        return self.path.parent

    # ---- running ----------------------------------------------------------------------------------------------
    def run(self, *, cache: bool = True, progress: bool = True, concurrency: int | None = None,
            sample: int | None = None, params: Mapping[str, Any] | None = None, base_url: str | None = None,
            providers: Mapping[str, Provider] | None = None) -> Results:
        """Run the evaluation; the arguments given override the file.

        Args:
            cache: use the response cache.
            progress: show a progress bar.
            concurrency: calls in flight per provider (the file's ``concurrency`` otherwise).
            sample: run a reproducible sample of this many cases (seeded by the file's ``seed``).
            params: params that replace the file's, key by key (``{"temperature": [0, 1]}``).
            base_url: the endpoint of every hosted model's provider (OpenAI-compatible or Anthropic).
            providers: provider instances by name (``{"fake": FakeProvider(...)}``), used as they are.
        """
        from ._runner import run

        suite = self.suite
        size = sample if sample is not None else self.sample
        if size is not None:
            suite = suite.sample(size, seed=self.seed)
        results = run(suite, self.variants, self._models(), repeats=self.repeats, scorer=self._scorers(),
                      transform=self.transform, params=self._params(params), cache=cache, progress=progress,
                      concurrency=concurrency if concurrency is not None else self.concurrency, seed=self.seed,
                      providers=self._providers(base_url, providers))
        results.meta["eval"] = {"file": str(self.path), "description": self.description, "baseline": self.baseline,
                                "thresholds": dict(self.thresholds), "scorer": self.scorer}
        return results

    def _models(self) -> list[ModelConfig] | None:
        return list(self.models) if self.models else None

    def _scorers(self) -> CaseScorers:
        if self.scorers is not None:
            return CaseScorers(self.scorers.default, base_dir=self.folder)  # fresh per run: judges close with it
        from ._scoring import default_scorer

        return CaseScorers(default_scorer(self.suite.labels), base_dir=self.folder)

    def _params(self, override: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not override:
            return self.params
        if not isinstance(override, Mapping):
            raise ArgumentError(f"params must be a mapping such as {{'temperature': [0, 0.7]}}, got {override!r}.")
        return {**(self.params or {}), **override}

    def _providers(self, base_url: str | None, given: Mapping[str, Provider] | None) -> dict[str, Provider]:
        from ..providers import make_provider, split_model_id

        urls = dict(self.base_urls)
        ids = [m.model for m in self.models or []] or [p.model for p in self.variants.values()]
        if base_url:
            urls.update({split_model_id(i)[0]: base_url for i in ids if isinstance(i, str)
                         and split_model_id(i)[0] in ("openai", "anthropic")})
        providers = dict(given or {})
        for name, url in urls.items():
            if name not in providers:
                model_id = next(i for i in ids if isinstance(i, str) and split_model_id(i)[0] == name)
                providers[name] = make_provider(model_id, base_url=url)
        return providers

    # ---- reading the results ------------------------------------------------------------------------------------
    def baseline_variant(self, results: Results) -> str:
        """The variant of ``results`` the others are compared with: the baseline itself, or (in a params sweep)
        its first arm, ``"terse[temperature=0]"``."""
        names = list(dict.fromkeys(results.df["variant"]))
        if self.baseline in names:
            return self.baseline
        arms = [name for name in names if name.startswith(f"{self.baseline}[")]
        if not arms:
            raise ArgumentError(f"the results hold no variant {self.baseline!r} (the eval file's baseline); they hold "
                                f"{names!r}. Run this eval file, or compare with pl.compare(results, baseline=...).")
        return arms[0]

    def compare(self, results: Results, **options: Any) -> Comparison:
        """Every variant against the baseline, paired by case (`pl.compare`; ``options`` pass through)."""
        from ..stats import compare

        return compare(results, baseline=self.baseline_variant(results), **options)

    def check(self, results: Results) -> list[str]:
        """The thresholds each variant × model missed, one sentence each; ``[]`` when every one is met.

        Thresholds are read on the point estimates: ``accuracy`` and ``error_rate`` from `Results.accuracy`,
        ``macro_f1``, ``micro_f1`` and ``kappa`` from `Results.classification` (the suite needs labels).
        """
        if not self.thresholds:
            return []
        table = results.accuracy()
        table = table.assign(error_rate=table["errors"] / table["n"])
        wanted = [name for name in self.thresholds if name in _CLASSIFICATION]
        if wanted:
            table = table.merge(self._classification(results, wanted), on=["variant", "model"], how="left")
        failures = []
        for row in table.to_dict("records"):
            for name, limit in self.thresholds.items():
                failures += _missed(row, name, limit)
        return failures

    @staticmethod
    def _classification(results: Results, wanted: list[str]) -> Any:
        if not hasattr(results, "classification"):
            raise ArgumentError(f"thresholds {wanted!r} need classification metrics, which this promptlab lacks. "
                                "Use accuracy and error_rate thresholds.")
        table = results.classification()
        frame = getattr(table, "df", table)
        return frame[["variant", "model", *wanted]]

    def __repr__(self) -> str:
        models = [m.label or m.model for m in self.models] if self.models else "each prompt's pin"
        return (f"EvalSpec({str(self.path)!r}: {len(self.variants)} prompts × {models} on {self.suite.name!r} "
                f"({len(self.suite)} cases), params={self.params!r})")

    def with_changes(self, **changes: Any) -> EvalSpec:
        """A copy with some attributes replaced (the file is not read again)."""
        return replace(self, **changes)


def _missed(row: dict, name: str, limit: float) -> list[str]:
    """The sentence for one missed threshold of one variant × model, or nothing."""
    import math

    value = row.get(name)
    what, direction = THRESHOLDS[name]
    where = f"variant {row['variant']!r} on {row['model']}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return [f"{where}: {name} could not be computed ({what}), so the threshold {limit:g} is not met."]
    if direction == "min" and value < limit:
        return [f"{where}: {name} {value:.3f} is below the threshold {limit:g} ({what})."]
    if direction == "max" and value > limit:
        return [f"{where}: {name} {value:.3f} is above the threshold {limit:g} ({what})."]
    return []
