"""Insights drawn from the stored events: question groups for the FAQ and knowledge gaps."""
