"""Shared package of chatlog: settings, schemas, storage layout, reader, database, errors."""
