-- promptlab metrics_latency: per prompt, version and hour: latency bucket counts (the monitor's p50/p95)
-- parameters (?, in order): since_ms, until_ms
SELECT
  prompt,
  version,
  (
    ts_ms - ts_ms % 3600000
  ) AS window_ms,
  CASE
    WHEN latency_s > 0
    THEN CAST(CEIL(LN(latency_s) * 4.99983332888865561e+01) AS INT)
    ELSE -1000000000
  END AS bucket,
  COUNT(*) AS bucket_n
FROM events
WHERE
  1 = 1 AND ts_ms >= ? AND ts_ms < ? AND NOT latency_s IS NULL
GROUP BY
  prompt,
  version,
  (
    ts_ms - ts_ms % 3600000
  ),
  CASE
    WHEN latency_s > 0
    THEN CAST(CEIL(LN(latency_s) * 4.99983332888865561e+01) AS INT)
    ELSE -1000000000
  END
