"""The report: one period's usage, quality, FAQ, gaps, suggestions, alerts and conversations to review.

``build`` reads it from the database into a ``model.Report``; ``markdown``, ``page``
(self-contained HTML with ``charts``) and JSON render it; ``schedule`` writes the
periodic ``reports/<period>.html`` files (``python -m insights.report`` is the child
process the ingestor's scheduled job runs).
"""
