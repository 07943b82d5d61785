-- promptlab ab_looks: per arm and look window: counts and sums of the decision and guardrails (analyze's table)
-- parameters (?, in order): latency_over_s (LatencySketch.tail_threshold(0.95) of latency_sketch with arms pooled), experiment, arm_1, arm_2
SELECT
  arm,
  (
    ts_ms - ts_ms % 3600000
  ) AS window_ms,
  COUNT(*) AS n,
  COUNT(success) AS success_n,
  SUM(success) AS successes,
  COUNT(format_ok) AS format_n,
  SUM(1 - format_ok) AS format_failures,
  SUM(CASE WHEN NOT error_type IS NULL THEN 1 ELSE 0 END) AS errors,
  SUM(CASE WHEN error_type = 'timeout' THEN 1 ELSE 0 END) AS timeouts,
  COUNT(latency_s) AS latency_n,
  SUM(latency_s) AS latency_sum,
  SUM(latency_s * latency_s) AS latency_sumsq,
  SUM(
    CASE WHEN NOT input_tokens IS NULL AND NOT output_tokens IS NULL THEN 1 ELSE 0 END
  ) AS tokens_n,
  SUM(CASE WHEN NOT output_tokens IS NULL THEN input_tokens END) AS input_tokens_sum,
  SUM(CASE WHEN NOT input_tokens IS NULL THEN output_tokens END) AS output_tokens_sum,
  COUNT(cost_usd) AS cost_n,
  SUM(cost_usd) AS cost_sum,
  SUM(cost_usd * cost_usd) AS cost_sumsq,
  COUNT(quality) AS quality_n,
  SUM(quality) AS quality_sum,
  SUM(quality * quality) AS quality_sumsq,
  MIN(ts_ms) AS first_ms,
  MAX(ts_ms) AS last_ms,
  SUM(CASE WHEN latency_s > ? THEN 1 ELSE 0 END) AS latency_over
FROM events
WHERE
  1 = 1 AND experiment = ? AND arm IN (?, ?)
GROUP BY
  arm,
  (
    ts_ms - ts_ms % 3600000
  )
