-- promptlab latency_sketch: per arm: latency bucket counts (p50/p95 and the pooled p95 of the tail guardrail)
-- parameters (?, in order): experiment, arm_1, arm_2
SELECT
  arm,
  CASE
    WHEN latency_s > 0
    THEN CAST(CEIL(LN(latency_s) * 4.99983332888865561e+01) AS INT)
    ELSE -1000000000
  END AS bucket,
  COUNT(*) AS bucket_n
FROM events
WHERE
  1 = 1 AND experiment = ? AND arm IN (?, ?) AND NOT latency_s IS NULL
GROUP BY
  arm,
  CASE
    WHEN latency_s > 0
    THEN CAST(CEIL(LN(latency_s) * 4.99983332888865561e+01) AS INT)
    ELSE -1000000000
  END
