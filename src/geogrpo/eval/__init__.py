"""Evaluation: metrics that evaluations and benchmarks report (independent of the rewards)."""
