"""Statistics: paired comparisons, intervals, multiplicity, always-valid sequential reads, SRM and planners.

Every function is pinned in tests to an outside reference (scipy, statsmodels, gbstats); the methods and the
reference values are on ``docs/statistics.md``.
"""

from .._face import declare

declare(__name__, globals(), {
    "compare": "._comparison", "Comparison": "._comparison",
    "wilson_interval": "._core", "zero_event_upper_bound": "._core", "newcombe_interval": "._core",
    "mean_se": "._core", "clustered_se": "._core", "mcnemar": "._core", "paired_ttest": "._core",
    "paired_bootstrap": "._core", "holm": "._core", "benjamini_hochberg": "._core", "quantile": "._core",
    "quantile_ci": "._core", "compare_quantiles": "._core",
    "two_proportion_ztest": "._sequential", "welch_test": "._sequential", "always_valid": "._sequential",
    "always_valid_proportions": "._sequential", "always_valid_means": "._sequential", "srm_check": "._sequential",
    "sample_size_two_proportions": "._planning", "mde_two_proportions": "._planning",
    "sample_size_paired": "._planning", "smallest_detectable_difference": "._planning",
    "paired_plan_from_pilot": "._planning",
})
