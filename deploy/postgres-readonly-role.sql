-- chatlog_reader: the role the analytics APIs log in as when CHATLOG_DATABASE_URL is set.
--
-- It may read every table and view of schema public (the statistics, the conversation
-- index and records, the views over every node's offsets) and nothing else: no write,
-- no DDL, no node schema of its own. The API also opens each of its sessions with
-- default_transaction_read_only; the role's grants hold even if that were lifted.
--
-- Run it once per database, AS THE ROLE THE INGESTORS CONNECT AS (the owner of the
-- tables), after or before their first start:
--
--     psql "postgresql://chatlog@db-host:5432/chatlog" -f deploy/postgres-readonly-role.sql
--     psql "postgresql://chatlog@db-host:5432/chatlog" -c '\password chatlog_reader'
--
-- ALTER DEFAULT PRIVILEGES covers what that role creates later: the tables of later
-- migrations, and the offsets views, which are recreated whenever a node joins. If the
-- ingestors' role may not create roles, a superuser runs the role part (the DO block and
-- ALTER ROLE), and the ALTER DEFAULT PRIVILEGES line gets "FOR ROLE <ingestors' role>". Then, on each
-- analytics API:
--
--     CHATLOG_DATABASE_URL=postgresql://chatlog_reader:<password>@db-host:5432/chatlog
--
-- Running it again changes nothing.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chatlog_reader') THEN
        CREATE ROLE chatlog_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO chatlog_reader', current_database());
END
$$;

-- Belt and braces: every transaction of the role is read-only unless it asks otherwise
-- (and asking gets it nothing: it has no write grant).
ALTER ROLE chatlog_reader SET default_transaction_read_only = on;

GRANT USAGE ON SCHEMA public TO chatlog_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO chatlog_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO chatlog_reader;
