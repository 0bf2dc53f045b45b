"""Derived state (sessions, statistics, conversations), kept current from the day files in a process of its own."""
