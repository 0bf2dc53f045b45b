"""The storage lifecycle: compression, retention, SQLite backups, WAL checkpoints, integrity checks.

Each concern is a plain synchronous function over a ``StorageLayout`` so that the ingestor
runs it in a worker thread on schedule (``jobs.lifecycle_jobs``) and the ``chatlog`` CLI
runs the same code by hand while the ingestor is stopped.
"""
