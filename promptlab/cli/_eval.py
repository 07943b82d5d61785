"""``promptlab eval``: run prompt variants on a suite (or an eval file), compare, gate, and write CI outputs.

Two ways in: flags (``--suite tickets.csv --prompt a.yaml --prompt b.yaml``) or an eval file (``-c
promptlab.yaml``), whose flags given on the command line override the file's (``--sample``, ``--concurrency``,
``--param``, ``--base-url``, ``--no-cache``, ``--report``). Outputs for CI are written by `promptlab.cli._output`:
``--json`` (versioned, `promptlab/data/eval-output.schema.json`), ``--junit`` and a Markdown summary appended to
``$GITHUB_STEP_SUMMARY`` when it is set.

Gates (exit 1 when any fails, after every output is written): ``--min-accuracy``, ``--baseline FILE`` (a Results
Parquet from ``--save``, compared paired by case: a significant regression fails), the eval file's
``thresholds``, and a run stopped past its error-rate limit (the failed calls stay rows in every output).

pandas and the statistics load after the calls, not before the first one (issue 13): only the run's own modules
are imported above the call.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError

if TYPE_CHECKING:
    from ..evaluation._results import Results

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130  # 130 = 128 + SIGINT, as shells report it
HOSTED = ("openai", "anthropic")  # the providers --base-url can point elsewhere
# Flags an eval file (-c) describes itself: giving them beside -c would silently fight the file, so they are refused.
_FILE_OWNS = {"suite": "--suite", "prompt": "--prompt", "model": "--model", "repeats": "--repeats",
              "seed": "--seed", "input_col": "--input-col", "expected_col": "--expected-col", "id_col": "--id-col",
              "category_col": "--category-col", "labels": "--labels", "no_labels": "--no-labels"}


def _count(minimum: int):
    """An argparse ``type=`` for whole numbers >= ``minimum`` (argparse reports the error and exits 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def add_eval_command(sub: argparse._SubParsersAction) -> None:
    """The ``eval`` subcommand and its flags."""
    p = sub.add_parser("eval", help="run prompt variants on a suite; compare, gate, and write CI outputs",
                       description="Run one or more prompt files on a suite (or the eval file given with -c), "
                                   "compare them (paired by case) against the first, print a summary, and write "
                                   "the HTML report, JSON, JUnit XML and the GitHub step summary you ask for.",
                       epilog="Exit codes: 0 ok, 1 a gate failed (--min-accuracy, --baseline regression, the eval "
                              "file's thresholds, too many failed calls), 2 bad arguments or input, 130 "
                              "interrupted.")
    what = p.add_argument_group("what to run")
    what.add_argument("-c", "--config", type=Path, default=None, metavar="PROMPTLAB_YAML",
                      help="an eval file (promptlab.yaml): prompts, models, suite, scorer, thresholds; the flags "
                           "--sample, --concurrency, --param, --base-url, --no-cache and --report override it")
    what.add_argument("--suite", default=None, help="suite file: YAML, JSONL, CSV, TSV, JSON or Parquet")
    what.add_argument("--prompt", action="append", default=None, metavar="[NAME=]PATH",
                      help="prompt file; repeat for variants (the first is the baseline). NAME defaults to A, B, …")
    what.add_argument("--model", default=None,
                      help="model id to run every variant on (e.g. local:gemma-3-270m); default: each prompt's pin")
    what.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                      help="override a request field (temperature, max_tokens, stop); VALUE a YAML scalar, or "
                           "a,b,c for a grid (each value runs as its own variant). Repeatable")
    what.add_argument("--sample", type=_count(0), default=None, help="run a seeded sample of N cases")
    what.add_argument("--repeats", type=_count(1), default=None, help="answers per case (default 1)")
    what.add_argument("--seed", type=int, default=None, help="seed for sampling and bootstrap (default 0)")
    what.add_argument("--concurrency", type=_count(1), default=None, metavar="N",
                      help="calls in flight per provider (default: the provider's own; the local model runs one)")
    what.add_argument("--base-url", default=None, metavar="URL",
                      help="endpoint of the run's OpenAI-compatible or Anthropic provider (vLLM, Ollama, a proxy)")
    what.add_argument("--no-cache", action="store_true", help="bypass the response cache")
    what.add_argument("--quiet", action="store_true", help="no progress bar")
    cols = p.add_argument_group("suites from tables (CSV, TSV, JSON, JSONL, Parquet)")
    cols.add_argument("--input-col", action="append", default=None, metavar="[VAR=]COL",
                      help="the column holding the input; repeat to pass several columns as template variables, "
                           "VAR=COL naming the variable of a column (--input-col body='Message Body')")
    cols.add_argument("--expected-col", default=None, metavar="COL", help="the column holding the expected answer")
    cols.add_argument("--id-col", default=None, metavar="COL", help="the column of case ids (default: generated)")
    cols.add_argument("--category-col", default=None, metavar="COL", help="the column of case categories")
    cols.add_argument("--labels", default=None, metavar="A,B,C", help="the label set, comma-separated")
    cols.add_argument("--no-labels", action="store_true",
                      help="no label set: compare whole answers (a table's labels are otherwise inferred, with a "
                           "warning)")
    out = p.add_argument_group("outputs")
    out.add_argument("--report", type=Path, default=None, help="write the HTML report here")
    out.add_argument("--save", type=Path, default=None, help="save the results (Parquet) here")
    out.add_argument("--json", type=Path, default=None, metavar="PATH",
                     help="write every number of the summary and comparisons, the run's metadata and the gates "
                          "as JSON (schema: promptlab/data/eval-output.schema.json)")
    out.add_argument("--junit", type=Path, default=None, metavar="PATH",
                     help="write JUnit XML: one testcase per case × variant × model; failed calls are <error>")
    gates = p.add_argument_group("gates (exit 1 when one fails)")
    gates.add_argument("--min-accuracy", type=float, default=None,
                       help="fail when any variant's accuracy is below this")
    gates.add_argument("--baseline", type=Path, default=None, metavar="FILE",
                       help="results saved with --save by an earlier run: compare paired by case, fail on a "
                            "significant regression")


# ---- reading the flags ------------------------------------------------------------------------------------------
def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["temperature=0,0.4", "max_tokens=64"]`` → ``{"temperature": [0, 0.4], "max_tokens": 64}``.

    Each value is read as a YAML scalar (``0.4`` a number, ``true`` a boolean, ``"\\n"`` a newline); what YAML reads
    as anything else stays the text typed (``###``, ``Answer:``). Commas make a grid.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ArgumentError(f"--param must look like KEY=VALUE (temperature=0.4, or temperature=0,0.4,0.8 for a "
                                f"grid); got {pair!r}.")
        if key in params:
            raise ArgumentError(f"--param {key} is given twice ({pair!r}); give a grid as one flag: "
                                f"--param {key}=a,b,c.")
        values = [_scalar(piece, pair) for piece in raw.split(",")]
        params[key] = values if len(values) > 1 else values[0]
    return params


def _scalar(text: str, pair: str) -> Any:
    """A number or boolean as YAML reads it, a quoted YAML string unquoted, anything else the text as typed
    (``###`` or ``Answer:`` are stop sequences, not a YAML comment or mapping)."""
    from .._yaml import load_yaml

    if not text.strip():
        raise ArgumentError(f"--param {pair!r}: a value is empty; write KEY=VALUE, or KEY=a,b,c for a grid (e.g. "
                            "--param temperature=0,0.4,0.8).")
    try:
        value = load_yaml(text, f"--param {pair!r}", ArgumentError).data
    except ArgumentError:
        value = None
    return value if isinstance(value, (str, int, float, bool)) else text.strip()


def suite_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `load_suite` column arguments the flags give (none when no column flag is given)."""
    options: dict[str, Any] = {}
    if args.input_col:
        options["input"] = _input_columns(args.input_col)
    for flag, key in (("expected_col", "expected"), ("id_col", "id"), ("category_col", "category")):
        if getattr(args, flag) is not None:
            options[key] = getattr(args, flag)
    if args.no_labels:
        if args.labels is not None:
            raise ArgumentError(f"--labels {args.labels!r} and --no-labels contradict each other; give one.")
        options["labels"] = False
    if args.labels is not None:
        labels = [label.strip() for label in args.labels.split(",")]
        if not all(labels):
            raise ArgumentError(f"--labels must list labels separated by commas, like positive,negative; got "
                                f"{args.labels!r} (an empty label).")
        options["labels"] = labels
    return options


def _input_columns(given: list[str]) -> str | list[str] | dict[str, str]:
    """One column → its name; several → a list (the variables are named by the columns); any ``VAR=COL`` → a
    mapping {variable: column}, a plain ``COL`` then naming its own variable."""
    if not any("=" in item for item in given):
        return given[0] if len(given) == 1 else list(given)
    mapping: dict[str, str] = {}
    for item in given:
        variable, sep, column = item.partition("=")
        variable, column = (variable.strip(), column) if sep else (item, item)
        if not variable or not column or variable in mapping:
            raise ArgumentError(f"--input-col {item!r}: write COL, or VAR=COL with a variable named once (e.g. "
                                "--input-col body='Message Body').")
        mapping[variable] = column
    return mapping


def _check_flags(args: argparse.Namespace) -> None:
    if args.config is not None:
        given = [flag for name, flag in _FILE_OWNS.items() if getattr(args, name) not in (None, [], False)]
        if given:
            raise ArgumentError(f"{', '.join(given)} cannot be combined with -c {str(args.config)!r}: the eval file "
                                "sets those. Edit the file, or run without -c. Flags that override the file: "
                                "--sample, --concurrency, --param, --base-url, --no-cache, --report.")
        return
    missing = [flag for flag, value in (("--suite", args.suite), ("--prompt", args.prompt)) if not value]
    if missing:
        raise ArgumentError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required (or give an "
                            "eval file with -c promptlab.yaml). Example: promptlab eval --suite suites/x.yaml "
                            "--prompt prompts/x.yaml")


def _named_prompts(specs: list[str]) -> dict:
    from ..authoring._prompt import load_prompt

    named = {}
    for i, spec in enumerate(specs):
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = chr(ord("A") + i), spec
        named[name] = load_prompt(path)
    return named


def base_url_providers(base_url: str, variants: dict, model: str | None) -> dict:
    """``{"openai": OpenAIProvider(base_url=...)}``: the one hosted provider of the run, pointed at ``base_url``."""
    from ..providers import make_provider, split_model_id

    asked = [model] if model else [prompt.model for prompt in variants.values()]
    names = sorted({split_model_id(model_id)[0] for model_id in asked})
    if len(names) != 1 or names[0] not in HOSTED:
        raise ArgumentError(f"--base-url points one OpenAI-compatible or Anthropic provider elsewhere, but this run "
                            f"asks {sorted(set(asked))!r} (providers {names!r}). Name the server's model with "
                            "--model openai:<name> (or anthropic:<name>) so every variant runs there.")
    return {names[0]: make_provider(f"{names[0]}:any", base_url=base_url)}


# ---- running -----------------------------------------------------------------------------------------------------
@dataclass
class _Ran:
    """What the run produced, however it was described (flags or an eval file)."""

    results: Results
    title: str
    report: Path | None
    stopped: str | None = None  # the run stopped past its error-rate limit: why
    spec: Any = None  # the eval file's spec, when -c was given
    threshold_failures: list[str] = field(default_factory=list)


def _run_flags(args: argparse.Namespace, providers: dict | None) -> tuple[Results, str]:
    from ..authoring._suite import load_suite
    from ..evaluation._runner import run

    seed = 0 if args.seed is None else args.seed
    with warnings.catch_warnings(record=True) as caught:  # shown as CLI lines, not Python warning records
        warnings.simplefilter("always")
        suite = load_suite(args.suite, **suite_options(args))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if caught and args.labels is None and not args.no_labels:
        print("  on the command line: --labels a,b,c declares the label set; --no-labels turns it off",
              file=sys.stderr)
    if args.sample is not None:
        suite = suite.sample(args.sample, seed=seed)
    variants = _named_prompts(args.prompt)
    options: dict[str, Any] = {"repeats": args.repeats or 1, "cache": not args.no_cache,
                               "progress": not args.quiet, "seed": seed}
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency
    if args.param:
        options["params"] = parse_params(args.param)
    if providers is None and args.base_url:
        providers = base_url_providers(args.base_url, variants, args.model)
    if providers:
        options["providers"] = providers
    return run(suite, variants, args.model, **options), suite.name


def _run_file(args: argparse.Namespace, spec: Any, providers: dict | None) -> Results:
    options: dict[str, Any] = {"cache": not args.no_cache, "progress": not args.quiet}
    if providers:
        options["providers"] = providers
    for name in ("concurrency", "sample", "base_url"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.param:
        options["params"] = parse_params(args.param)
    return spec.run(**options)


def _execute(args: argparse.Namespace, providers: dict | None) -> _Ran:
    """Run what the flags or the eval file describe; a run stopped past its error-rate limit keeps its rows."""
    from ..errors import RunFailed

    spec = None
    if args.config is not None:
        from ..evaluation import load_eval

        spec = load_eval(args.config)  # before the run: a run stopped by failed calls still has its thresholds
    try:
        if spec is not None:
            results, name = _run_file(args, spec, providers), spec.suite.name
        else:
            results, name = _run_flags(args, providers)
        stopped = None
    except RunFailed as failed:
        if failed.results is None:
            raise
        results, stopped = failed.results, str(failed)
        name = (failed.results.meta.get("suite") or {}).get("name") or "suite"
    report = args.report or (spec.report if spec is not None else None)
    return _Ran(results, f"promptlab — {name}", report, stopped, spec)


def cmd_eval(args: argparse.Namespace, *, providers: dict | None = None) -> int:
    """Run, compare, print, write the outputs asked for, and return the exit code the gates decide.

    Args:
        args: the parsed ``eval`` flags.
        providers: provider instances serving string model ids, as `run(providers=...)` takes them (tests pass
            a `FakeProvider` here; the command line uses ``--base-url``).
    """
    from ..evaluation._runner import RunInterrupted

    _check_flags(args)
    if args.param:
        parse_params(args.param)  # a bad --param fails before any call is made
    try:
        ran = _execute(args, providers)
    except RunInterrupted as stopped:
        print(f"interrupted: {stopped.summary('run the same command to resume')}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _finish(args, ran)


def _finish(args: argparse.Namespace, ran: _Ran) -> int:
    from . import _output

    results = ran.results
    seed = args.seed if args.seed is not None else getattr(ran.spec, "seed", None) or 0
    comparison = _within_run_comparison(ran, seed)
    against = _output.baseline_comparison(results, args.baseline, seed) if args.baseline else None
    classified = _output.classification(results, comparison.baseline if comparison is not None else None)
    _print_summary(results, comparison, against, classified)
    print(_cache_line(results.meta))
    print(_run_line(results.meta))
    if ran.spec is not None:
        ran.threshold_failures = list(ran.spec.check(results))
    gates = _gates(args, ran, against)
    outcome = _output.Outcome(results, comparison, against, gates, title=ran.title, classification=classified)
    _write(args, ran, outcome)
    for gate in gates:
        for failure in gate.failures:
            print(f"gate failed: {failure}", file=sys.stderr)
    return outcome.exit_code


def _within_run_comparison(ran: _Ran, seed: int) -> Any:
    from ..stats._comparison import compare

    variants = list(dict.fromkeys(ran.results.df["variant"].dropna()))
    if len(variants) < 2:
        return None
    if ran.spec is not None:
        return ran.spec.compare(ran.results, seed=seed)
    return compare(ran.results, baseline=variants[0], seed=seed)


def _write(args: argparse.Namespace, ran: _Ran, outcome: Any) -> None:
    from . import _output

    results = ran.results
    if args.save:
        outcome.outputs["save"] = str(results.save(args.save))
    if ran.report:
        from ..notebook._report import comparison_report

        path = comparison_report(ran.report, results, outcome.comparison, ran.title)
        outcome.outputs["report"] = str(path)
        print(f"report: {path}")
    if args.junit:
        outcome.outputs["junit"] = str(_output.write_junit(args.junit, results, ran.title))
        print(f"junit: {args.junit}")
    if args.json:
        _output.write_json(args.json, outcome)
        print(f"json: {args.json}")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            _output.append_markdown(Path(step_summary), outcome)
        except OSError as exc:  # the summary is a courtesy: the gates' verdict is the exit code, keep it
            print(f"warning: could not append to $GITHUB_STEP_SUMMARY ({step_summary!r}): {exc}", file=sys.stderr)


def _gates(args: argparse.Namespace, ran: _Ran, against: Any) -> list:
    from ._output import Gate, baseline_gate, min_accuracy_gate

    gates = []
    if ran.stopped is not None:
        gates.append(Gate("max_error_rate", False, None, [f"the run stopped early: {ran.stopped}"]))
    if args.min_accuracy is not None:
        gates.append(min_accuracy_gate(ran.results, args.min_accuracy))
    if against is not None:
        gates.append(baseline_gate(against))
    if ran.spec is not None:
        thresholds = getattr(ran.spec, "thresholds", None)
        gates.append(Gate("thresholds", not ran.threshold_failures, thresholds, list(ran.threshold_failures)))
    return gates


def _print_summary(results: Results, comparison: Any, against: Any, classified: Any = None) -> None:
    table = results.summary()
    cols = [c for c in ["variant", "model", "n", "accuracy", "ci_low", "ci_high", "errors", "p50_s", "p95_s",
                        "cost_usd"] if c in table]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if comparison is not None:
        print()
        print(comparison.summary_text())
    if against is not None:
        print()
        print(f"against the saved baseline {str(against.path)!r} (run {', '.join(against.run_ids) or '?'}):")
        print(against.comparison.summary_text())
    if classified is not None:
        print()
        print(_classification_text(classified))


def _classification_text(classified: Any) -> str:
    """Macro-F1 and κ per variant × model with their intervals, then macro-F1 paired against the baseline."""
    table = classified.table
    shown = table.df[["variant", "model", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "micro_f1", "kappa",
                      "kappa_ci_low", "kappa_ci_high"]]
    lines = [f"classification over labels {', '.join(table.labels)} ({100 * table.confidence:.0f}% bootstrap "
             "intervals over cases):", shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="NA")]
    if classified.comparison is not None and not classified.comparison.empty:
        pairs = classified.comparison[["variant", "baseline", "model", "diff", "ci_low", "ci_high", "p_adj",
                                       "verdict"]]
        lines += ["macro-F1, paired by case:",
                  pairs.to_string(index=False, float_format=lambda v: f"{v:+.3f}", na_rep="NA")]
    return "\n".join(lines)


def _gate(results: Results, min_accuracy: float | None) -> int:
    """The ``--min-accuracy`` gate alone: print each failing variant × model, return the exit code."""
    if min_accuracy is None:
        return EXIT_OK
    from ._output import min_accuracy_gate

    gate = min_accuracy_gate(results, min_accuracy)
    for failure in gate.failures:
        print(f"gate failed: {failure}", file=sys.stderr)
    return EXIT_OK if gate.passed else EXIT_GATE


def _run_line(meta: dict) -> str:
    """``run: <id>``: where the run store keeps this run (``pl.load_run(id)``, ``promptlab runs show id``)."""
    ids = [run.get("run_id") for run in (meta.get("runs") or [meta]) if run.get("run_id")]
    return f"run: {', '.join(ids)} (promptlab runs show ID · pl.load_run(ID))" if ids else "run: not recorded"


def _cache_line(meta: dict) -> str:
    """``cache: 12 hits · 8 misses (path)``: what this run took from the cache and what it asked a model
    (summed over the runs of results made of several)."""
    caches = [run.get("cache") or {} for run in (meta.get("runs") or [meta])]
    cache = {"enabled": any(c.get("enabled") for c in caches), "hits": sum(c.get("hits", 0) for c in caches),
             "misses": sum(c.get("misses", 0) for c in caches),
             "path": next((c["path"] for c in caches if c.get("path")), None)}
    if not cache["enabled"]:
        return "cache: off (--no-cache): every call went to a model"
    return f"cache: {cache['hits']} hits · {cache['misses']} misses ({cache['path']})"
