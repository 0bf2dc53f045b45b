"""Statistics shared by the ingestor's live path, the rebuild CLI and the analytics API.

- ``sketch``: the mergeable latency sketch (percentiles within 0.5%);
- ``queries``: query normalisation and mergeable top lists;
- ``schema``: the tables (``chat_statistics`` and its rollups) and row derivation;
- ``sessions``: exact distinct sessions for any hour, day or date range;
- ``live``: folding stored records into the rows they touch, in the index transaction;
- ``decode`` / ``frames`` / ``aggregate`` / ``topqueries`` / ``reach`` / ``workers`` /
  ``rebuild``: recomputing days from the day files (msgspec, numpy and pandas, in worker
  processes) with the live path's rows.

Importing this package is cheap; pandas is only loaded by the rebuild modules.
"""
