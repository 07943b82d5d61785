"""Import a promptfoo config: prompt files, a suite, an eval file (``promptlab.yaml``) and a report of the rest.

``import_promptfoo("promptfooconfig.yaml", "imported/")`` (``promptlab import promptfoo ... -o imported``)
reads promptfoo's documented config (https://promptfoo.dev/docs/configuration/reference) and writes:

* ``prompts/<id>.yaml`` — one promptlab prompt file per promptfoo prompt (inline text, ``file://`` text files and
  globs, JSON chats of a fixed system text and a user message); chats with templated system text or several
  turns, and python prompt functions, become ``{id, python: module:function}`` entries through a generated
  adapter module (`_promptfoo_shims`);
* ``suites/<name>.yaml`` — one case per promptfoo test (inline, YAML/JSON/JSONL files, CSV rows with
  ``__expected`` columns, ``defaultTest`` merged, list variables expanded), each with its assertions as a scorer
  spec (`_promptfoo_asserts`); a case expects the value of its first ``equals`` (else ``icontains``/``contains``)
  assertion, a test whose only assertion is ``equals`` is scored by the default scorer on that ``expected``, and
  a small repeated set of expected values that the prompts name becomes the suite's labels (classification);
* ``promptlab.yaml`` — the eval file: prompts, models (providers with their temperature and max_tokens; providers
  that differ only in temperature become a ``params`` grid), suite, scorer, transform, repeats, concurrency.

What promptlab cannot express is never dropped silently: `ImportReport.skipped` lists each thing with why (the
CLI prints it), and `ImportReport.notes` each conversion that behaves differently from promptfoo.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._files import atomic_write
from .._yaml import load_yaml, read_text
from ..errors import ArgumentError
from ._promptfoo_asserts import Converter, convert_transform, grader_of, map_metrics
from ._promptfoo_read import ImportedModel, ImportedPrompt, Log, Source, read_prompts, read_providers
from ._promptfoo_shims import Shims
from ._promptfoo_tests import ImportedTest, default_test, read_tests

EVAL_FILE = "promptlab.yaml"
FALLBACK_MODEL = "local:gemma-3-270m"
_CONFIG_NAMES = ("promptfooconfig.yaml", "promptfooconfig.yml", "promptfooconfig.json")
_TOP_KEYS = {"description", "prompts", "providers", "targets", "tests", "defaultTest", "scenarios", "evaluateOptions",
             "commandLineOptions", "outputPath", "derivedMetrics", "assertionTemplates"}
_TOP_WHY = {
    "env": "environment values are not written to files (they often hold keys): set them in your environment",
    "nunjucksFilters": "custom Nunjucks filters are JavaScript; templates that use them will not render",
    "extensions": "extension hooks are JavaScript or python run around promptfoo's evaluation; promptlab has none",
    "sharing": "promptlab writes a standalone HTML report instead (report: in promptlab.yaml)",
    "redteam": "red-team generation is not part of promptlab",
    "tags": "not needed: promptlab runs record their suite, prompts and models in results.meta",
    "metadata": "not needed: promptlab runs record their suite, prompts and models in results.meta",
    "writeLatestResults": "promptlab keeps runs where you save them (promptlab eval --save, Results.save)",
    "tracing": "promptlab records each call's latency, tokens and cost in the results; there is no tracing",
}
_OPTION_WHY = {
    "prefix": "a per-test prefix to the prompt has no promptlab equivalent; put the text in the template",
    "suffix": "a per-test suffix to the prompt has no promptlab equivalent; put the text in the template",
    "transformVars": "variables are not transformed by code; compute them into the suite's inputs",
    "storeOutputAs": "multi-turn chains that feed one answer into the next test are not converted",
    "rubricPrompt": "promptlab's judge uses its own grading prompt",
    "runSerially": "promptlab runs calls concurrently (set concurrency: 1 in promptlab.yaml to run one at a time)",
}
_HANDLED_OPTIONS = {"transform", "postprocess", "provider", "disableDefaultAsserts", "disableVarExpansion"}


@dataclass
class ImportReport:
    """What `import_promptfoo` wrote and what it could not convert.

    Attributes:
        eval_file: the eval file written (``<out_dir>/promptlab.yaml``); run it with ``pl.load_eval(path).run()``
            or ``promptlab eval -c path``.
        written: every file written, the eval file first.
        skipped: ``(what, why)`` for everything not converted.
        notes: conversions that behave differently from promptfoo (how, and what to check).
    """

    eval_file: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The report as text: files written, what was not converted and why, what differs."""
        lines = [f"wrote {len(self.written)} files:"] + [f"  {path}" for path in self.written]
        if self.skipped:
            lines += ["", f"not converted ({len(self.skipped)}):"]
            lines += [f"  - {what}: {why}" for what, why in self.skipped]
        if self.notes:
            lines += ["", f"converted with a difference ({len(self.notes)}):"]
            lines += [f"  - {note}" for note in self.notes]
        lines += ["", f"run it: promptlab eval -c {self.eval_file}"]
        return "\n".join(lines)

    __str__ = summary


def import_promptfoo(config: str | Path, out_dir: str | Path, *, models: list[str] | None = None,
                     grader: str | None = None, overwrite: bool = False) -> ImportReport:
    """Convert a promptfoo config into promptlab prompt files, a suite and an eval file (see the module doc).

    Args:
        config: the promptfoo config file (YAML or JSON), or the folder holding ``promptfooconfig.yaml``.
        out_dir: the folder to write into (created if missing).
        models: run on these model ids instead of the config's providers (like promptfoo's ``--providers``);
            a temperature grid of the providers is kept.
        grader: the judge model for ``llm-rubric`` assertions that name none, over ``defaultTest.options.provider``
            as promptfoo's ``--grader`` (default: that provider, else promptfoo's default grader ``openai:gpt-4o``).
        overwrite: replace an eval file already in ``out_dir``.

    Returns:
        An `ImportReport`: the files written, what was not converted and why, conversions that differ.

    Raises:
        ArgumentError: the config is missing, not YAML/JSON, not a mapping, or has no prompts or no tests that
            could be read; or ``out_dir`` already holds an eval file and ``overwrite`` is False.
    """
    path = _config_path(Path(config))
    out = Path(out_dir)
    if (out / EVAL_FILE).exists() and not overwrite:
        raise ArgumentError(f"{out / EVAL_FILE} already exists. Import into an empty folder, or pass overwrite=True "
                            "(--force on the command line) to replace it.")
    data = _read_config(path)
    log = Log()
    src = Source(path.parent.resolve(), log)
    shims = Shims(out, path)
    _log_top_keys(data, log)
    _log_run_options(data, log)
    prompts = read_prompts(data["prompts"], src)
    if not prompts:
        raise ArgumentError(f"{path}: none of its prompts could be read: "
                            + "; ".join(f"{what}: {why}" for what, why in log.skipped))
    default = default_test(data.get("defaultTest"), src)
    tests = read_tests(data, default, src)
    if not tests:
        raise ArgumentError(f"{path}: it has no tests promptlab could read"
                            + (": " + "; ".join(f"{w}: {y}" for w, y in log.skipped) if log.skipped else
                               ". Add `tests:` (inline, or file://tests.csv)."))
    providers = read_providers(data.get("providers", data.get("targets")), src)
    converter = Converter(src, shims, data, grader or grader_of(default.get("options"))
                          or _command_line(data).get("grader"))
    cases, transform = _cases(tests, default, converter, src, shims)
    labels = _labels(cases, prompts, bool(_classification_metrics(data.get("derivedMetrics"))))
    map_metrics(converter.metric_names, data.get("derivedMetrics"), labels is not None, log)
    transform = _provider_transform(providers, transform, src, shims)
    model_entries, grid = _models(providers, models, log)
    pin = model_entries[0]["id"] if model_entries else FALLBACK_MODEL
    if not model_entries:
        log.note(f"no provider could be converted: the prompts are pinned to {FALLBACK_MODEL} (pass models=[...] "
                 "or --model to choose)")
    report = ImportReport(out / EVAL_FILE)
    prompt_entries = _write_prompts(prompts, pin, bool(model_entries), cases, path, out, shims, report, log)
    if not prompt_entries:
        raise ArgumentError(f"{path}: none of its prompts is a valid promptlab prompt: "
                            + "; ".join(f"{what}: {why}" for what, why in log.skipped if what.startswith("prompt")))
    suite_path = _write_suite(path, data, cases, labels, out, report)
    if not shims.empty:
        module = out / f"{shims.module}.py"
        atomic_write(module, shims.render())
        report.written.append(module)
    eval_data = _eval_file(data, path, prompt_entries, model_entries, grid, suite_path, cases, transform, out)
    atomic_write(out / EVAL_FILE, _header(path) + dump_yaml(eval_data))
    report.written.insert(0, out / EVAL_FILE)
    if converter.judged:
        log.note("llm-rubric → promptlab's judge: the rubric is one criterion the grader scores from 1 to 5, passing "
                 "at threshold 0.5 (a 3) unless the assertion set one; promptfoo's grader answers pass/fail itself")
    report.skipped, report.notes = log.skipped, log.notes
    return report


# ---- reading the config --------------------------------------------------------------------------------------
def _config_path(path: Path) -> Path:
    if path.is_dir():
        for name in _CONFIG_NAMES:
            if (path / name).is_file():
                return path / name
        raise ArgumentError(f"{str(path)!r} is a folder without a promptfoo config ({', '.join(_CONFIG_NAMES)}). "
                            "Give the config file's path.")
    if path.suffix.lower() in (".js", ".cjs", ".mjs", ".ts"):
        raise ArgumentError(f"{str(path)!r} is a JavaScript config, which is code, not data. Write it out as "
                            "YAML (node -e \"console.log(JSON.stringify(require('./" + path.name + "')))\" > "
                            "promptfooconfig.json) and import that.")
    return path


def _read_config(path: Path) -> dict[str, Any]:
    text = read_text(path, ArgumentError, "promptfoo config", accepted="promptfoo configs are YAML or JSON.")
    data = load_yaml(text, str(path), ArgumentError).data
    if not isinstance(data, dict):
        raise ArgumentError(f"{path}: a promptfoo config is a mapping with `prompts`, `providers` and `tests`, got "
                            f"{type(data).__name__}. Check that this is the config file.")
    if "prompts" not in data:
        raise ArgumentError(f"{path}: the config has no `prompts` (keys: {', '.join(map(str, data)) or 'none'}). "
                            "promptfoo needs them too; add `prompts: [...]`.")
    return data


def _log_top_keys(data: dict[str, Any], log: Log) -> None:
    for key in data:
        if key in _TOP_WHY:
            names = f" ({', '.join(map(str, data[key]))})" if key == "env" and isinstance(data[key], dict) else ""
            log.skip(f"{key}{names}", _TOP_WHY[key])
        elif key not in _TOP_KEYS:
            log.skip(str(key), "not a promptfoo setting the importer knows")


def _command_line(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get("commandLineOptions")
    return value if isinstance(value, dict) else {}


# ---- cases ----------------------------------------------------------------------------------------------------
def _cases(tests: list[ImportedTest], default: dict[str, Any], converter: Converter, src: Source,
           shims: Shims) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """The suite's cases, and the run's transform (``defaultTest``'s, or the one every test shares)."""
    default_options = default.get("options") if isinstance(default.get("options"), dict) else {}
    _log_options(default_options, "defaultTest", src.log)
    default_transform = default_options.get("transform") or default_options.get("postprocess")
    transforms: Counter[str] = Counter()
    cases, ids, empty = [], Counter(), []
    for test in tests:
        own = {k: v for k, v in test.options.items() if k not in default_options or default_options[k] != v}
        _log_options(own, test.where, src.log)
        transforms[test.options.get("transform") or test.options.get("postprocess") or ""] += 1
        specs = converter.specs(test.asserts, test.vars, grader_of(own))
        if not specs:  # promptfoo passes a test without assertions; here its answer is kept with no verdict
            specs = [{"type": "python", "value": shims.no_verdict()}]
            empty.append(test.description or f"case {len(cases) + 1}")
        cases.append(_case(test, specs, ids, len(cases) + 1))
        if test.threshold is not None:
            src.log.skip(f"{test.where}: threshold {test.threshold}", "a promptlab case passes when every scorer "
                         "passes (its score is their mean); the threshold is kept in the case's metadata")
    if any(isinstance(v, str) and "{{" in v for test in tests for v in test.vars.values()):
        src.log.note("variables that use other variables ('tweet about {{topic}}') are passed as written: promptlab "
                     "renders the prompt template once, not the variables inside it")
    if empty:
        src.log.note(f"{len(empty)} case(s) without assertions ({', '.join(empty[:5])}{' …' * (len(empty) > 5)}): "
                     "promptfoo passes them; promptlab records their answers with no verdict (passed is NA)")
    chosen = default_transform or (transforms.most_common(1)[0][0] if len(transforms) == 1 else None)
    for raw, count in transforms.items():
        if raw and raw != chosen:
            src.log.skip(f"options.transform {raw!r} of {count} test(s)", "promptlab applies one transform to "
                         f"every answer; the run uses {'defaultTest' if default_transform else 'none'}'s")
    return cases, convert_transform(chosen, "transform", src, shims) if chosen else None


def _log_options(options: dict[str, Any], where: str, log: Log) -> None:
    for key in options:
        if key not in _HANDLED_OPTIONS:
            log.skip(f"{where}: options.{key}", _OPTION_WHY.get(key, "not a test option promptlab has"))


def _case(test: ImportedTest, specs: list[dict], ids: Counter, number: int) -> dict[str, Any]:
    case: dict[str, Any] = {"id": _case_id(test.description, number, ids), "input": test.vars}
    expected = _expected(specs)
    if expected is not None:
        case["expected"] = expected
    meta = dict(test.metadata)
    for key in ("category", "difficulty", "tags"):
        value = meta.pop(key, None)
        if key == "category" and isinstance(value, str) and value.strip():
            case["category"] = value.strip()
        elif key == "difficulty" and value in ("easy", "medium", "hard"):
            case["difficulty"] = value
        elif key == "tags" and value:
            case["tags"] = [str(tag) for tag in (value if isinstance(value, list) else re.split(r"[,;|]", str(value)))
                            if str(tag).strip()]
        elif value is not None:
            meta[key] = value
    if specs and not (len(specs) == 1 and specs[0] == {"type": "exact", "value": expected}):
        case["scorer"] = specs[0] if len(specs) == 1 else specs
    if test.description:
        meta["description"] = test.description
    if test.threshold is not None:
        meta["promptfoo_threshold"] = test.threshold
    metrics = sorted({raw["metric"] for _, raw in test.asserts
                      if isinstance(raw, dict) and raw.get("metric") and raw.get("weight") != 0})
    if metrics:
        meta["promptfoo_metrics"] = metrics
    meta["promptfoo_source"] = test.where
    case["metadata"] = meta
    return case


def _case_id(description: str | None, number: int, ids: Counter) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", (description or "").lower()).strip("-")[:48] or f"case-{number:03d}"
    ids[base] += 1
    return base if ids[base] == 1 else f"{base}-{ids[base]}"


def _expected(specs: list[dict]) -> Any:
    """The value a case expects: its first `exact` value, else its first contains-like value."""
    for kinds in (("exact",), ("icontains", "contains", "starts_with")):
        for spec in specs:
            if spec["type"] in kinds and not spec.get("negate") and isinstance(spec.get("value"), str):
                return spec["value"]
    return None


def _labels(cases: list[dict[str, Any]], prompts: list[ImportedPrompt], asked: bool) -> list[str] | None:
    """A label set for a classification task: every case expects one of a few short values, some repeated, and
    the prompts name every one of them (or derivedMetrics ask for precision, recall or F1)."""
    values = [case.get("expected") for case in cases]
    if not values or any(not isinstance(v, str) or not v.strip() or len(v) > 40 or "\n" in v for v in values):
        return None
    distinct = list(dict.fromkeys(values))
    folded = {re.sub(r"\W+", " ", v).strip().casefold() for v in distinct}
    if len(distinct) > 30 or len(distinct) == len(values) or len(folded) != len(distinct):
        return None
    text = " ".join(_prompt_text(prompt) for prompt in prompts).casefold()
    named = all(re.search(rf"(?<!\w){re.escape(v.casefold())}(?!\w)", text) for v in distinct)
    return distinct if named or asked else None


def _prompt_text(prompt: ImportedPrompt) -> str:
    if prompt.python is not None:
        return prompt.python[0].read_text(encoding="utf-8", errors="replace")
    return " ".join([prompt.template, prompt.system, *(m["content"] for m in prompt.messages or [])])


def _classification_metrics(derived: Any) -> list[str]:
    return [item["name"] for item in derived if isinstance(item, dict) and isinstance(item.get("name"), str)
            and re.search(r"(?i)precision|recall|f1|f_?score", item["name"] + str(item.get("value", "")))] \
        if isinstance(derived, list) else []


# ---- models ---------------------------------------------------------------------------------------------------
def _models(providers: list[ImportedModel], override: list[str] | None,
            log: Log) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    """The eval file's models and params grid: providers that differ only in temperature become a grid."""
    groups: dict[tuple, list[ImportedModel]] = {}
    for model in providers:
        fixed = {k: v for k, v in model.params.items() if k != "temperature"}
        groups.setdefault((model.id, model.base_url, json.dumps(fixed, sort_keys=True)), []).append(model)
    temperatures = [[m.params.get("temperature") for m in group] for group in groups.values()]
    grid: dict[str, list[Any]] = {}
    if temperatures and all(len(t) > 1 and None not in t and len(set(t)) == len(t) for t in temperatures) \
            and all(set(t) == set(temperatures[0]) for t in temperatures):
        grid = {"temperature": temperatures[0]}
        labels = [m.label for m in providers if m.label]
        if labels:
            log.note(f"providers {', '.join(map(repr, labels))} differ only in temperature: one model each, with "
                     f"params temperature {temperatures[0]} (variants are named '<prompt>[temperature=…]')")
        providers = [group[0] for group in groups.values()]
        for model in providers:
            model.params = {k: v for k, v in model.params.items() if k != "temperature"}
            model.label = None
    if override:
        fixed = providers[0].params if grid and len(providers) == 1 else {}
        if providers and not grid and any(m.params for m in providers):
            log.note("models given: the providers' own params (temperature, max_tokens) are not carried over")
        providers = [ImportedModel(model_id, None, dict(fixed)) for model_id in override]
    _one_endpoint_per_provider(providers, log)
    entries, seen = [], Counter(m.id for m in providers)
    for number, model in enumerate(providers, 1):
        entry: dict[str, Any] = {"id": model.id}
        label = model.label or (f"{model.id}#{number}" if seen[model.id] > 1 else None)
        if label:
            entry["label"] = label
        if model.params:
            entry["params"] = model.params
        if model.base_url:
            entry["base_url"] = model.base_url
        entries.append(entry)
    return entries, grid


def _one_endpoint_per_provider(models: list[ImportedModel], log: Log) -> None:
    """promptlab gives all models of one provider one endpoint: keep a base_url only where its provider agrees."""
    by_vendor: dict[str, set[str | None]] = {}
    for model in models:
        by_vendor.setdefault(model.id.split(":")[0], set()).add(model.base_url)
    for model in models:
        urls = by_vendor[model.id.split(":")[0]]
        if model.base_url and len(urls) > 1:
            log.skip(f"provider {model.id}: base_url {model.base_url}", "promptlab sends every model of one provider "
                     "to one endpoint, and this config's other models of it use another; give the endpoint with "
                     "`promptlab eval --base-url`, or import the models into separate eval files")
            model.base_url = None


def _provider_transform(providers: list[ImportedModel], transform: dict | None, src: Source,
                        shims: Shims) -> dict | None:
    raws = {m.transform for m in providers if m.transform}
    if not raws:
        return transform
    if transform is None and len(raws) == 1 and all(m.transform for m in providers):
        return convert_transform(raws.pop(), "provider transform", src, shims)
    for raw in raws:
        src.log.skip(f"provider transform {raw!r}", "promptlab applies one transform to every answer, whatever "
                     "the model; the run keeps the tests' transform")
    return transform


# ---- writing --------------------------------------------------------------------------------------------------
def _write_prompts(prompts: list[ImportedPrompt], pin: str, has_models: bool, cases: list[dict[str, Any]],
                   config: Path, out: Path, shims: Shims, report: ImportReport, log: Log) -> list[dict[str, str]]:
    from ..authoring._prompt import Prompt

    entries, names = [], Counter()
    sample = cases[0]["input"] if cases else {}
    for prompt in prompts:
        if prompt.python is not None or prompt.messages is not None:
            ref = (shims.python_prompt(prompt.id, *prompt.python, prompt.source) if prompt.python is not None else
                   shims.chat_prompt(prompt.id, prompt.messages, prompt.source))
            entries.append({"id": prompt.id, "python": ref, **({} if has_models else {"model": pin})})
            if prompt.params:
                log.skip(f"{prompt.source}: config {sorted(prompt.params)}", "a python prompt takes its request "
                         "params from the models and params of promptlab.yaml")
            continue
        template = _jinja(prompt.template, prompt.source, log)
        stem = re.sub(r"[^a-z0-9_]+", "_", prompt.id.lower()).strip("_") or "prompt"
        names[stem] += 1
        stem = stem if names[stem] == 1 else f"{stem}_{names[stem]}"
        fields = {"name": stem, "version": "1.0.0", "model": pin, "system": prompt.system, "template": template,
                  "metadata": {"imported_from": "promptfoo", "source": prompt.source, "variant": prompt.id}}
        fields.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in prompt.params.items()})
        try:
            built = Prompt.model_validate(fields)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            log.skip(prompt.source, f"not a valid promptlab prompt: {' '.join(str(exc).split())[:300]}")
            continue
        _try_render(built, sample, log)
        path = out / "prompts" / f"{stem}.yaml"
        data = built.model_dump(mode="json", exclude_defaults=True)
        head = {"name": built.name, "version": built.version, "model": built.model}
        atomic_write(path, _header(config, prompt.source) + dump_yaml({**head, **data}))
        report.written.append(path)
        entries.append({"id": prompt.id, "file": path.relative_to(out).as_posix()})
    return entries


def _jinja(template: str, where: str, log: Log) -> str:
    """Nunjucks to Jinja: the two share ``{{ }}`` and ``{% %}``; nunjucks' ``dump`` is Jinja's ``tojson``."""
    converted = re.sub(r"\|\s*dump\b", "| tojson", template)
    if converted != template:
        log.note(f"{where}: the Nunjucks filter `dump` became Jinja's `tojson`")
    return converted


def _try_render(prompt: Any, sample: dict[str, Any], log: Log) -> None:
    try:
        prompt.render_user(sample)
    except Exception as exc:  # noqa: BLE001 - any render failure is worth telling now, not on every call
        log.note(f"prompt {prompt.metadata.get('variant')!r} does not render for the first case: {exc}")


def _write_suite(path: Path, data: dict[str, Any], cases: list[dict[str, Any]], labels: list[str] | None,
                 out: Path, report: ImportReport) -> Path:
    name = re.sub(r"[^a-z0-9_]+", "_", (path.parent.name if path.stem.startswith("promptfooconfig") else
                                        path.stem).lower()).strip("_") or "promptfoo"
    suite: dict[str, Any] = {"name": name}
    if isinstance(data.get("description"), str):
        suite["description"] = data["description"]
    if labels:
        suite["labels"] = labels
    suite["cases"] = cases
    target = out / "suites" / f"{name}.yaml"
    atomic_write(target, _header(path) + dump_yaml(suite))
    report.written.append(target)
    return target


def _eval_file(data: dict[str, Any], path: Path, prompts: list[dict], models: list[dict], grid: dict,
               suite: Path, cases: list[dict], transform: dict | None, out: Path) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if isinstance(data.get("description"), str):
        spec["description"] = data["description"]
    spec["prompts"] = prompts
    if models:
        spec["models"] = models
    if grid:
        spec["params"] = grid
    relative = suite.relative_to(out).as_posix()
    needs_expected = all("expected" in case for case in cases)
    spec["suite"] = relative if needs_expected else {"path": relative, "require_expected": False}
    spec["scorer"] = "exact"
    if transform:
        spec["transform"] = transform
    options = {**_command_line(data), **(data.get("evaluateOptions") or {})}
    if isinstance(options.get("repeat"), int) and options["repeat"] > 1:
        spec["repeats"] = options["repeat"]
    if isinstance(options.get("maxConcurrency"), int):
        spec["concurrency"] = options["maxConcurrency"]
    output = data.get("outputPath")
    html = [p for p in (output if isinstance(output, list) else [output]) if isinstance(p, str) and p.endswith(".html")]
    if html:
        spec["report"] = html[0]
    return spec


_RUN_OPTIONS = {"repeat", "maxConcurrency", "grader"}


def _log_run_options(data: dict[str, Any], log: Log) -> None:
    """evaluateOptions / commandLineOptions keys the eval file does not take, and a non-HTML outputPath."""
    for section in ("evaluateOptions", "commandLineOptions"):
        for key in data.get(section) or {}:
            if key not in _RUN_OPTIONS:
                log.skip(f"{section}.{key}", "not an eval file setting: promptlab eval has its own flags "
                         "(--sample, --no-cache, --save, --quiet)")
    output = data.get("outputPath")
    for item in output if isinstance(output, list) else [output] if output else []:
        if not (isinstance(item, str) and item.endswith(".html")):
            log.skip(f"outputPath {item}", "promptlab saves results with `promptlab eval --save results.parquet` "
                     "(or --json); the eval file's `report:` takes an HTML path")


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks (``|``), so templates and chats read as they were written."""


def _text_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text_block)


def dump_yaml(data: Any) -> str:
    """YAML text of the files the importer writes (keys in order, unicode as is, text blocks literal)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def _header(path: Path, source: str | None = None) -> str:
    origin = f"{source} of {path.name}" if source else path.name
    return (f"# Imported from {origin} by `promptlab import promptfoo` on {dt.date.today().isoformat()}.\n"
            "# What could not be converted was printed then (ImportReport.skipped); edit freely.\n")
