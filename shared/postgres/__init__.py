"""The derived state in a PostgreSQL shared by many ingestors (CONTRACT "Many machines")."""
