"""The read-only analytics API and dashboard."""
