"""Reproducible benchmarks; their latest results live in bench/results/."""
