"""Benchmarks: run each with `python -m bench.<name>`; they compare against baselines in one run."""
