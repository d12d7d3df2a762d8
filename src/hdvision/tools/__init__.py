"""Commands that print numbers: cost report, data-pipeline and GPU benchmarks, sweep summary,
data check."""
