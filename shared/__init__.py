"""What both services and the CLI share: settings, wire types, storage layout, the day-file reader,
SQLite set-up, locks, errors and serving."""
