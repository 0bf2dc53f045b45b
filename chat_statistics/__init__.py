"""Usage statistics of the chatbot: live aggregation, the tables, and the queries that read them.

Named for its tables (``chat_statistics*``): a top-level ``statistics`` would shadow the
standard library's module of that name for every program run from the repository.
Used by the derived-state process (live), the ``rebuild-stats`` CLI and the daily finalise
(``rebuild``), the analytics API and ``chatlog report`` (``reads``).

- ``sketch``: the mergeable latency sketch (percentiles within 0.5%);
- ``top_queries``: query normalisation and mergeable top lists;
- ``tables``: the tables (``chat_statistics`` and its rollups) and row derivation;
- ``sessions``: exact distinct sessions for any hour, day or date range;
- ``live``: folding stored records into the rows they touch, in the line applier's transaction;
- ``live_top``: keeping a row's top list current from a batch;
- ``reads``: the summary and per-bucket rows the analytics API and ``chatlog report`` read;
- ``rebuild/``: recomputing days from the day files (msgspec, numpy, pandas and pyarrow,
  in worker processes) with the live path's rows.

Importing this package is cheap; pandas is only loaded by the rebuild modules.
"""
