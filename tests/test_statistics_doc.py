"""docs/statistics.md stays true: every reference value is recomputed with the outside library its row names
(scipy, statsmodels, numpy, gbstats — never promptlab), every promptlab name it mentions exists, it names every
verdict and column the code reports, its worked verdict example is what `compare` reports, and nothing in the
repository cites a statistics page outside it."""

from __future__ import annotations

import ast
import importlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "statistics.md"
HEADER = "| id | source | call | output | value |"
OUTSIDE = ("scipy", "statsmodels", "numpy", "math", "gbstats", "sklearn")
"""Modules a reference call may import: the page's references are outside libraries only."""
SOURCES = ("scipy", "statsmodels", "numpy", "gbstats", "sklearn", "formula", "published")
LIBRARY_TOLERANCE = 5e-11
"""Library and formula values are written rounded to 10 decimals; published ones as their source prints them."""
SAFE_BUILTINS = {"tuple": tuple, "list": list, "sorted": sorted, "int": int, "float": float, "range": range,
                 "abs": abs, "min": min, "max": max, "sum": sum, "len": len}


@dataclass(frozen=True)
class Row:
    """One row of a reference table, with the import statements written above its table."""

    id: str
    source: str
    call: str
    values: tuple[str, ...]
    imports: tuple[str, ...]


# ---- reading the page ----------------------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _unquote(cell: str) -> str:
    return cell[1:-1] if cell.startswith("`") and cell.endswith("`") else cell


def parse_rows(text: str) -> list[Row]:
    """Every row of every reference table (tables headed `HEADER`), in page order."""
    rows: list[Row] = []
    imports: tuple[str, ...] = ()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Imports:"):
            imports = tuple(re.findall(r"`([^`]+)`", line))
        if line.strip() == HEADER:
            i += 2  # the header and its |---| line
            while i < len(lines) and lines[i].startswith("|"):
                row_id, source, call, _, value = _cells(lines[i])
                rows.append(Row(row_id, source, _unquote(call), tuple(v.strip() for v in value.split(",")),
                                imports))
                i += 1
            continue
        i += 1
    return rows


def parse_data(text: str) -> dict[str, Any]:
    """The literal assignments of the page's ```python data block (literals only: nothing is executed)."""
    block = re.search(r"Data used below:\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/statistics.md lost its 'Data used below:' python block"
    data = {}
    for node in ast.parse(block.group(1)).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.unparse(node)
        data[node.targets[0].id] = _literal(node.value)
    return data


def _literal(value: ast.expr) -> Any:
    """A literal, or ``list(range(a, b))`` with literal bounds (how the page writes 1..100)."""
    source = ast.unparse(value)
    match = re.fullmatch(r"list\(range\((\d+), (\d+)\)\)", source)
    return list(range(int(match.group(1)), int(match.group(2)))) if match else ast.literal_eval(value)


TEXT = DOC.read_text(encoding="utf-8")
ROWS = parse_rows(TEXT)


# ---- stand-ins and formulas for what cannot be imported here -------------------------------------------------
class _ProportionStatistic:
    """Stand-in for gbstats.models.statistics.ProportionStatistic (gbstats is not a promptlab dependency)."""

    def __init__(self, n: int, sum: float):  # gbstats' own keyword
        self.n, self.mean = n, sum / n
        self.variance = self.mean * (1 - self.mean)


class _SequentialConfig:
    """Stand-in for gbstats.frequentist.tests.SequentialConfig (absolute differences only)."""

    def __init__(self, difference_type: str = "relative", alpha: float = 0.05,
                 sequential_tuning_parameter: float = 5000):
        assert difference_type == "absolute", "the page's always-valid rows are absolute differences"
        self.alpha, self.tuning = alpha, sequential_tuning_parameter


class _SequentialTwoSidedTTest:
    """Stand-in for gbstats' SequentialTwoSidedTTest: the normal-mixture formulas of the page, section 4."""

    def __init__(self, a: _ProportionStatistic, b: _ProportionStatistic, config: _SequentialConfig):
        alpha, theta = config.alpha, b.mean - a.mean
        v, n = a.variance / a.n + b.variance / b.n, a.n + b.n
        rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / config.tuning
        tau2 = n * v * rho2
        log_lambda = 0.5 * math.log(v / (v + tau2)) + theta ** 2 * tau2 / (2 * v * (v + tau2))
        self.p_value = min(1.0, math.exp(-log_lambda))
        half = math.sqrt(v * n) * math.sqrt(2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / alpha)
                                            / (n ** 2 * rho2))
        self.confidence_interval = [theta - half, theta + half]


STAND_INS = {"ProportionStatistic": _ProportionStatistic, "SequentialConfig": _SequentialConfig,
             "SequentialTwoSidedTTest": _SequentialTwoSidedTTest}


def _newcombe_paired(a: int, b: int, c: int, d: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """Newcombe's paired square-and-add interval for (c − b)/n (1998, method 10) on statsmodels' Wilson bounds."""
    from statsmodels.stats.proportion import proportion_confint

    n = a + b + c + d
    pa, pb = (a + b) / n, (a + c) / n
    la, ua = proportion_confint(a + b, n, alpha=alpha, method="wilson")
    lb, ub = proportion_confint(a + c, n, alpha=alpha, method="wilson")
    margins, cross = (a + b) * (c + d) * (a + c) * (b + d), a * d - b * c
    phi = 0.0 if margins == 0 else ((cross - n / 2) / math.sqrt(margins) if cross > n / 2
                                    else (cross / math.sqrt(margins) if cross < 0 else 0.0))
    diff = pb - pa
    low = diff - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2 - 2 * phi * (pb - lb) * (ua - pa))
    high = diff + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2 - 2 * phi * (ub - pb) * (pa - la))
    return diff, low, high


def _r_newcombe_paired(call: str) -> tuple[float, float, float]:
    """The R call `Newcombe_square_and_add_CI_paired_2x2(matrix(c(n11, n12, n21, n22), 2, byrow = TRUE))`:
    rows are A (first), columns B (second), so a = n11, b = n12 (only A), c = n21 (only B), d = n22."""
    cells = [int(x) for x in re.search(r"c\(([^)]*)\)", call).group(1).split(",")]
    alpha = re.search(r"alpha\s*=\s*([0-9.]+)", call)
    return _newcombe_paired(*cells, alpha=float(alpha.group(1)) if alpha else 0.05)


PUBLISHED = {"Newcombe_square_and_add_CI_paired_2x2": _r_newcombe_paired}
"""Published values the test cannot recompute with their own software: recomputed by the page's formula."""


# ---- evaluating a row ----------------------------------------------------------------------------------------
def _namespace(imports: tuple[str, ...]) -> dict[str, Any]:
    """Run a table's import statements (outside modules only); gbstats names fall back to the stand-ins."""
    space: dict[str, Any] = dict(parse_data(TEXT))
    for statement in imports:
        node = ast.parse(statement).body[0]
        assert isinstance(node, ast.Import | ast.ImportFrom), f"not an import: {statement!r}"
        module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        assert module.split(".")[0] in OUTSIDE, f"{statement!r} imports from outside {OUTSIDE!r}"
        try:
            exec(compile(ast.Module([node], []), "<docs/statistics.md>", "exec"), space)
        except ImportError:
            if not module.startswith("gbstats"):
                raise
            space.update({alias.name: STAND_INS[alias.name] for alias in node.names})
    return space


def _flatten(result: Any) -> list[float]:
    if isinstance(result, tuple | list | np.ndarray):
        return [x for item in result for x in _flatten(item)]
    return [float(result)]


def _compute(row: Row) -> list[float]:
    if row.source == "published":
        name = row.call.split("(")[0]
        return _flatten(PUBLISHED[name](row.call))
    space = _namespace(row.imports)
    space["__builtins__"] = SAFE_BUILTINS
    return _flatten(eval(row.call, space))  # a call written in this repository's own page


def _tolerance(row: Row, written: str) -> float:
    if row.source != "published":
        return LIBRARY_TOLERANCE
    decimals = len(written.split(".")[1]) if "." in written else 0
    return 0.5 * 10 ** -decimals + 1e-12


# ---- the tests -----------------------------------------------------------------------------------------------
def test_page_has_reference_tables_with_unique_ids_and_known_sources():
    ids = [row.id for row in ROWS]
    assert len(ROWS) >= 50, f"only {len(ROWS)} reference rows parsed from {DOC}"
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {row.source for row in ROWS} <= set(SOURCES)
    assert {row.source for row in ROWS} >= {"scipy", "statsmodels", "numpy", "gbstats", "formula", "published"}
    assert all(row.values and row.imports or row.source == "published" for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_reference_value_matches_its_outside_call(row: Row):
    got = _compute(row)
    assert len(got) == len(row.values), f"{row.id}: {row.call} gives {got!r}, the page lists {row.values!r}"
    for value, written in zip(got, row.values, strict=True):
        if written == "nan":
            assert math.isnan(value), f"{row.id}: {row.call} gives {value!r}, the page says nan"
            continue
        assert abs(value - float(written)) <= _tolerance(row, written), (
            f"{row.id}: {row.call} gives {value!r}, the page says {written}")


def test_a_wrong_value_on_the_page_is_caught():
    row = next(r for r in ROWS if r.id == "W1")
    tampered = Row(row.id, row.source, row.call, (row.values[0], "0.2259189"), row.imports)
    value = _compute(tampered)[1]
    assert abs(value - float(tampered.values[1])) > _tolerance(tampered, tampered.values[1])


def _promptlab_names(text: str) -> set[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # a fence's backticks would pair the spans wrongly
    spans = re.findall(r"`([^`]+)`", text)
    return {name for span in spans for name in re.findall(r"\bpromptlab(?:\.[A-Za-z_]\w*)+", span)}


def _resolve(name: str) -> Any:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(name)


def test_every_promptlab_name_on_the_page_exists():
    names = _promptlab_names(TEXT)
    assert len(names) >= 30, sorted(names)
    missing = []
    for name in sorted(names):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"docs/statistics.md names promptlab objects that do not exist: {missing!r}"


def test_the_page_states_the_defaults_the_code_uses():
    from promptlab.stats import BCA_MAX_N, DEFAULT_TUNING, QUANTILE_METHOD, SRM_THRESHOLD

    assert f"`promptlab.stats.BCA_MAX_N` = {BCA_MAX_N:,}" in TEXT
    assert f"`promptlab.stats.DEFAULT_TUNING` = {DEFAULT_TUNING:,}" in TEXT
    assert f'numpy\'s `"{QUANTILE_METHOD}"`' in TEXT
    assert f"p < {SRM_THRESHOLD:g} (`promptlab.stats.SRM_THRESHOLD`)" in TEXT


def test_the_page_names_only_the_faces():
    """docs use the public faces (``promptlab.stats.holm``), never a private module (``promptlab.stats._x``)."""
    assert not re.findall(r"promptlab(?:\.\w+)*\._\w+", TEXT)



def test_the_page_names_every_verdict_and_column_the_code_reports():
    from promptlab.evaluation import _summaries as summaries
    from promptlab.stats import _comparison as comparison

    prose = " ".join(re.sub(r"```.*?```", "", TEXT, flags=re.S).split())  # no fences; spans may wrap lines
    named = set(re.findall(r"`([^`]+)`", prose))
    expected = {*comparison.VERDICTS, *summaries.ACCURACY_COLUMNS, *summaries.FORMAT_COLUMNS, "ci_level",
                "ci_low_unadj", "ci_high_unadj", "cached_excluded", "parsed", "format_error", "enforced"}
    assert expected <= named, f"docs/statistics.md does not name {sorted(expected - named)!r}"
    assert "TBD" not in TEXT and "**(issue 12)**" not in TEXT, "the page still marks rules as unsettled"


def _worked_example_frame() -> Any:
    """The page's verdict example: per-case means S_A (baseline) and S_B, each case answered twice alike, beside
    a variant C that passes every case (its p is far below B's, so Holm leaves B's p as it is)."""
    import pandas as pd

    data = parse_data(TEXT)
    arms = {"A": data["S_A"], "B": data["S_B"], "C": [1] * len(data["S_A"])}
    return pd.DataFrame([{"case_id": f"c{i:02d}", "variant": v, "model": "m", "repeat": r, "passed": bool(x),
                          "score": float(x)} for v, s in arms.items() for i, x in enumerate(s) for r in range(2)])


def test_the_pages_borderline_example_is_what_compare_reports():
    from promptlab.stats._comparison import compare

    rows = {row.id: row for row in ROWS}
    flat = " ".join(TEXT.split())
    passed = compare(_worked_example_frame(), "A").df.set_index("variant").loc["B"]
    assert passed["verdict"] == "borderline" and passed["ci_level"] == pytest.approx(0.975)
    # The displayed interval is scipy's 97.5% paired t interval, row PT6.
    assert [passed["ci_low"], passed["ci_high"]] == pytest.approx([float(v) for v in rows["PT6"].values], abs=1e-9)
    assert passed["p_adj"] == pytest.approx(float(rows["PT1"].values[1]), abs=1e-9)
    assert passed["note"].removeprefix("borderline: ") in flat, passed["note"]
    scored = compare(_worked_example_frame(), "A", metric="score").df.set_index("variant").loc["B"]
    # Graded scores: scipy's 97.5% BCa interval, row BS2, agrees with the test.
    assert scored["verdict"] == "better"
    assert [scored["ci_low"], scored["ci_high"]] == pytest.approx([float(v) for v in rows["BS2"].values], abs=1e-9)

def test_the_pages_format_example_is_what_promptlab_reports():
    """Section 11's example through `Results.format_compliance` and `compare(metric="format_ok")`: the page's rows
    FC1–FC4, Newcombe's paired interval by the formula on statsmodels' Wilson bounds, and the verdict it states."""
    import promptlab as pl
    from promptlab.evaluation._results import build_frame

    data, rows = parse_data(TEXT), {row.id: row for row in ROWS}
    frame = build_frame([{"case_id": f"c{i:02d}", "variant": v, "model": "m", "repeat": 0,
                          "output": None if x is None else "answer", "format_ok": None if x is None else bool(x),
                          "error_type": "server" if x is None else None}
                         for v in ("A", "B") for i, x in enumerate(data[f"F_{v}"])], "r")
    results = pl.Results(frame)
    table = results.format_compliance().set_index("variant")
    for variant, row_id in (("B", "FC1"), ("A", "FC2")):
        got = [table.at[variant, "ci_low"], table.at[variant, "ci_high"]]
        assert got == pytest.approx([float(v) for v in rows[row_id].values], abs=1e-9), row_id
    assert (table.at["B", "n"], table.at["B", "format_ok"], table.at["B", "failed_calls"]) == (19, 18, 1)
    compared = pl.compare(results, "A", metric="format_ok").df.iloc[0]
    assert (compared["b"], compared["c"], compared["n"], compared["n_dropped"]) == (0, 4, 19, 1)
    assert compared["p_exact"] == pytest.approx(float(rows["FC3"].values[0]), abs=1e-12)
    assert compared["p_value"] == pytest.approx(float(rows["FC4"].values[0]), abs=1e-12)
    assert [compared["diff"], compared["ci_low"], compared["ci_high"]] == pytest.approx(
        list(_newcombe_paired(14, 0, 4, 1)), abs=1e-9)
    assert compared["verdict"] == "no detectable difference" and round(100 * compared["mde"]) == 27


EXTERNAL_PAGE = re.compile("STATISTICS" + r"\.md|shared/" + "design|\\.\\./" + "shared")
"""A citation of the design page that lived outside this repository (split so this file does not match)."""
SCANNED = ("promptlab", "tests", "notebooks", "docs", "bench", "configs", "suites", "prompts", ".ci")


def test_nothing_in_the_repository_cites_a_page_outside_it():
    files = [p for d in SCANNED if (ROOT / d).exists() for p in (ROOT / d).rglob("*") if p.is_file()]
    files += [p for p in ROOT.glob("*") if p.is_file()]
    offenders = []
    for path in files:
        if path.suffix in (".pyc", ".gguf", ".db", ".sqlite", ".parquet") or "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        offenders += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(text.splitlines(), 1)
                      if EXTERNAL_PAGE.search(line)]
    assert not offenders, ("these lines cite a statistics page outside the repository; cite docs/statistics.md "
                           f"instead: {offenders!r}")
