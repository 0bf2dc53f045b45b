"""Alerts: rules over per-minute counts, their state in SQLite, and webhook delivery (CONTRACT "Alerts")."""
