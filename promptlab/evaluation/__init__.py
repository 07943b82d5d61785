"""Test: run prompts on models (concurrency, retries, cache, budget), score the answers, read the results."""

from .._face import declare

declare(__name__, globals(), {
    "run": "._runner", "arun": "._runner", "estimate": "._runner", "RunInterrupted": "._runner",
    "ModelConfig": "._plan", "Transform": "._transforms", "load_eval": "._evalfile", "EvalSpec": "._evalspec",
    "Results": "._results", "COLUMNS": "._results", "accuracy_row": "._summaries",
    "ACCURACY_COLUMNS": "._summaries", "ClassificationTable": "._classification",
    "ResponseCache": "._cache", "runs": "._runstore", "compare": "._compare", "load_run": "._runstore",
    "runs_dir": "._runstore",
    "Budget": "._cost", "prices": "promptlab.providers._prices", "set_price": "promptlab.providers._prices",
    "load_prices": "promptlab.providers._prices",
    "count_tokens": "._cost",
    "Score": "._scoring", "Scorer": "._scoring", "LabelSet": "._scoring", "ExactMatch": "._scoring",
    "Contains": "._scoring", "AnyOf": "._scoring", "Regex": "._scoring", "JsonValid": "._scoring",
    "JsonSchema": "._scoring", "Numeric": "._scoring", "IContains": "._scoring", "StartsWith": "._scoring",
    "ContainsJson": "._scoring", "JsonField": "._fields", "build_scorer": "._scorer_specs",
    "FORMAT_COLUMNS": "._summaries",
    "judge": "._judge", "Criterion": "._judge", "Judge": "._judge", "rejudge": "._judge",
    "noise_decomposition": "._judge", "SECURITY_REVIEW_CRITERIA": "._judge",
    "calibrate": "._calibration", "agreement": "._calibration", "Agreement": "._calibration",
    "JudgeCard": "._calibration", "load_judge_card": "._calibration", "position_swap": "._judge_probes",
    "length_bias": "._judge_probes", "score_answers": "._calibration",
    "load_reviews": "._reviews", "REVIEW_COLUMNS": "._reviews",
})
