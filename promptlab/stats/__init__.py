"""Statistics: paired comparisons, intervals, multiplicity, always-valid sequential reads, SRM and planners.

Every function is pinned in tests to an outside reference (scipy, statsmodels, gbstats, scikit-learn); the
methods and the reference values are on ``docs/statistics.md``.
"""

from .._face import declare

declare(__name__, globals(), {
    "compare": "._comparison", "Comparison": "._comparison", "VERDICTS": "._comparison",
    "wilson_bounds": "._intervals", "case_proportion_interval": "._intervals", "CaseProportion": "._intervals",
    "case_mean_se": "._means", "paired_proportion_interval": "._paired", "paired_bootstrap_levels": "._paired",
    "BCA_MAX_N": "._paired", "QUANTILE_METHOD": "._quantiles", "live_latency": "._quantiles",
    "DEFAULT_TUNING": "._sequential", "SRM_THRESHOLD": "._sequential",
    "wilson_interval": "._intervals", "zero_event_upper_bound": "._intervals", "newcombe_interval": "._intervals",
    "mean_se": "._means", "clustered_se": "._means", "mcnemar": "._paired", "paired_ttest": "._paired",
    "paired_bootstrap": "._paired", "holm": "._multiplicity", "benjamini_hochberg": "._multiplicity",
    "quantile": "._quantiles", "quantile_ci": "._quantiles", "compare_quantiles": "._quantiles",
    "two_proportion_ztest": "._sequential", "welch_test": "._sequential", "always_valid": "._sequential",
    "always_valid_proportions": "._sequential", "always_valid_means": "._sequential", "srm_check": "._sequential",
    "sample_size_two_proportions": "._planning", "mde_two_proportions": "._planning",
    "sample_size_paired": "._planning", "smallest_detectable_difference": "._planning",
    "paired_plan_from_pilot": "._planning",
    "compare_macro_f1": "._classification",
    "proportion_interval": "._intervals", "PROPORTION_METHODS": "._intervals", "bonferroni": "._multiplicity",
    "welch_interval": "._sequential", "power_two_proportions": "._planning", "power_paired": "._planning",
    "one_sided_sequence": "._confseq", "one_sided_boundary": "._confseq", "sequential_srm": "._srm",
    "quantile_difference": "._quantiles", "quantile_difference_from_histograms": "._quantiles",
    "relative_lift": "._lift", "LiftInterval": "._lift",
    "bayesian_effect": "._bayesian", "bayesian_proportions": "._bayesian", "beta_binomial": "._bayesian",
    "GaussianPrior": "._bayesian", "BetaPrior": "._bayesian", "BayesianRead": "._bayesian",
    "BetaBinomialRead": "._bayesian",
    "cuped": "._cuped", "cuped_bayesian": "._cuped", "CupedArm": "._cuped", "CupedResult": "._cuped",
})
