"""Recomputing statistics from the day files (numpy, pandas and pyarrow live here only)."""
